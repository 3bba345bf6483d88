//! The deploy gate on the command line: `policy check` and `gate` against images in a real
//! registry (Debian's docker-registry on loopback), signed and attested by sigil and cosign.

mod common;

use common::*;
use serde_json::Value;
use std::path::Path;

const SLSA1: &str = r#"{"buildDefinition":{"buildType":"https://example.com/build/v1","externalParameters":{},"resolvedDependencies":[{"uri":"git+https://github.com/org/repo@refs/heads/main","digest":{"gitCommit":"0123abcd"}}]},"runDetails":{"builder":{"id":"https://example.com/builder"}}}"#;

fn vuln(findings: &str) -> String {
    format!(
        r#"{{"invocation":{{"parameters":null,"uri":"","event_id":"","builder.id":""}},"scanner":{{"uri":"pkg:github/aquasecurity/trivy","version":"0.57.0","db":{{"uri":"","version":""}},"result":{{"SchemaVersion":2,"Results":[{{"Target":"os","Vulnerabilities":[{findings}]}}]}}}},"metadata":{{"scanStartedOn":"2026-11-01T10:08:00Z","scanFinishedOn":"2026-11-01T10:09:00Z"}}}}"#
    )
}

fn push(reg: &Registry, repo: &str, tag: &str) -> String {
    let store = reg.store(repo);
    let digest = rt().block_on(push_image(&store, Some(tag), &format!("{repo}:{tag}"), "amd64"));
    format!("{}/{repo}@{digest}", reg.host())
}

/// Runs `sigil gate` with the registry flags.
fn gate(d: &Path, args: &[&str]) -> std::process::Output {
    let mut a = vec!["gate", "--allow-http-registry"];
    a.extend_from_slice(args);
    sigil(d, &a)
}

fn verdicts(out: &std::process::Output) -> Vec<Value> {
    stdout(out).lines().map(|l| serde_json::from_str(l).expect("a JSON verdict per line")).collect()
}

fn write_policy(d: &Path, name: &str, yaml: &str) {
    std::fs::write(d.join(name), yaml).unwrap();
}

#[test]
fn policy_check_accepts_the_documented_policy_and_names_line_and_field_of_errors() {
    let d = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/policy");
    let out = sigil(&d, &["policy", "check", "-o", "json", "full.yaml"]);
    assert_code(&out, 0);
    let v: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(v["valid"], true);
    assert_eq!(v["rules"][0]["name"], "prod");
    assert_eq!(v["rules"][0]["threshold"], 2);
    assert_eq!(v["rules"][0]["authorities"][2]["kind"], "keyless");
    assert!(v["digest"].as_str().unwrap().starts_with("sha256:"));
    let out = sigil(&d, &["policy", "check", "bad/unknown-field.yaml"]);
    assert_code(&out, 1);
    assert!(
        stderr(&out).contains("line 10, column 9: rules[0].authorities[0]: unknown field `kee`"),
        "{}",
        stderr(&out)
    );
    assert!(stdout(&out).is_empty());
    // The same errors stop `gate` before any image is judged.
    let out = sigil(&d, &["gate", "--policy", "bad/threshold-too-high.yaml", "registry.example.com/app:1"]);
    assert_code(&out, 1);
    assert!(stderr(&out).contains("threshold 2 must be between 1"), "{}", stderr(&out));
}

#[test]
fn threshold_modes_and_the_default_rule() {
    let reg = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_code(&sigil(d, &["generate-key-pair", "--output-key-prefix", "a"]), 0);
    assert_code(&sigil(d, &["generate-key-pair", "--output-key-prefix", "b"]), 0);
    let both = push(&reg, "prod/both", "v1");
    let only_a = push(&reg, "prod/only-a", "v1");
    let staging = push(&reg, "staging/app", "v1");
    let other = push(&reg, "other/app", "v1");
    for (key, image) in [("a.key", &both), ("b.key", &both), ("a.key", &only_a), ("a.key", &staging), ("a.key", &other)]
    {
        assert_code(&sigil(d, &["sign", "--allow-http-registry", "--key", key, image]), 0);
    }
    // b signs in cosign 3's bundle format: the gate reads both formats by default.
    assert_code(&sigil(d, &["sign", "--allow-http-registry", "--format", "bundle", "--key", "b.key", &only_a]), 0);
    let host = reg.host();
    write_policy(
        d,
        "policy.yaml",
        &format!(
            r#"apiVersion: sigil/v1
kind: ImagePolicy
rules:
  - name: prod
    images: ["{host}/prod/**"]
    threshold: 2
    authorities:
      - {{name: a, key: {{path: a.pub}}, transparencyLog: ignore}}
      - {{name: b, key: {{path: b.pub}}, transparencyLog: ignore}}
  - name: staging
    images: ["{host}/staging/*"]
    mode: warn
    authorities:
      - {{name: b, key: {{path: b.pub}}, transparencyLog: ignore}}
"#
        ),
    );
    let out = gate(d, &["--policy", "policy.yaml", &both, &only_a]);
    assert_code(&out, 0);
    let v = verdicts(&out);
    assert_eq!(v.len(), 2);
    assert_eq!((v[0]["admission"].as_str(), v[0]["rule"].as_str()), (Some("allow"), Some("prod")));
    assert_eq!(v[0]["authorities"], serde_json::json!(["a", "b"]));
    assert_eq!(v[0]["outcome"]["result"], "passed");
    assert_eq!(v[1]["admission"], "allow", "a legacy signature by a and a bundle by b make two");
    // The JSON schema (README, "Output"): these fields and no others.
    let keys = |x: &Value| x.as_object().unwrap().keys().cloned().collect::<Vec<_>>().join(",");
    assert_eq!(keys(&v[0]), "admission,attestations,authorities,digest,image,mode,outcome,rule");
    assert_eq!(keys(&v[0]["outcome"]), "result");

    // Only a signed the staging image: its warn rule admits it with a warning.
    let out = gate(d, &["--policy", "policy.yaml", &staging]);
    assert_code(&out, 0);
    let v = verdicts(&out);
    assert_eq!((v[0]["admission"].as_str(), v[0]["mode"].as_str()), (Some("warn"), Some("warn")));
    assert!(v[0]["message"].as_str().unwrap().contains("authority \"b\""), "{}", v[0]);

    // No rule matches: the default denies.
    let out = gate(d, &["--policy", "policy.yaml", &other, &both]);
    assert_code(&out, 12);
    let v = verdicts(&out);
    assert_eq!(v[0]["admission"], "deny");
    assert_eq!(v[0]["rule"], Value::Null);
    assert_eq!(keys(&v[0]), "admission,attestations,authorities,digest,image,message,mode,outcome,rule");
    assert_eq!(keys(&v[0]["outcome"]), "reasons,result");
    assert!(stderr(&out).contains("no rule of the policy matches"), "{}", stderr(&out));
    assert_eq!(v[1]["admission"], "allow");

    // Threshold not met: a signature by a alone on a prod image.
    let only_a_unsigned_by_b = push(&reg, "prod/a-only", "v1");
    assert_code(&sigil(d, &["sign", "--allow-http-registry", "--key", "a.key", &only_a_unsigned_by_b]), 0);
    let out = gate(d, &["--policy", "policy.yaml", &only_a_unsigned_by_b]);
    assert_code(&out, 12);
    let m = verdicts(&out)[0]["message"].as_str().unwrap().to_owned();
    assert!(m.contains("1 of the 2 signature(s) required verified"), "{m}");

    // A tag is resolved to its digest; a missing tag is denied.
    let tagged = format!("{host}/prod/both:v1");
    let out = gate(d, &["--policy", "policy.yaml", &tagged, &format!("{host}/prod/both:nope")]);
    assert_code(&out, 12);
    let v = verdicts(&out);
    assert_eq!(v[0]["digest"].as_str(), both.split('@').nth(1));
    assert!(v[1]["message"].as_str().unwrap().contains("image not found"), "{}", v[1]);

    // default: allow admits what no rule matches, unchecked.
    let allow = std::fs::read_to_string(d.join("policy.yaml")).unwrap().replace("rules:", "default: allow\nrules:");
    write_policy(d, "allow.yaml", &allow);
    assert_code(&gate(d, &["--policy", "allow.yaml", &other]), 0);
}

#[test]
fn required_attestations_with_slsa_and_vulnerability_conditions() {
    let reg = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_code(&sigil(d, &["generate-key-pair"]), 0);
    let clean = push(&reg, "app/clean", "v1");
    let critical = push(&reg, "app/critical", "v1");
    std::fs::write(d.join("slsa.json"), SLSA1).unwrap();
    std::fs::write(d.join("clean.json"), vuln(r#"{"VulnerabilityID":"CVE-L","Severity":"LOW"}"#)).unwrap();
    std::fs::write(
        d.join("critical.json"),
        vuln(r#"{"VulnerabilityID":"CVE-C","Severity":"CRITICAL"},{"VulnerabilityID":"CVE-F","Severity":"MEDIUM","FixedVersion":"2.0"}"#),
    )
    .unwrap();
    for (image, report) in [(&clean, "clean.json"), (&critical, "critical.json")] {
        assert_code(&sigil(d, &["sign", "--allow-http-registry", "--key", "sigil.key", image]), 0);
        let attest = |t: &str, p: &str| {
            sigil(d, &["attest", "--allow-http-registry", "--key", "sigil.key", "--type", t, "--predicate", p, image])
        };
        assert_code(&attest("slsaprovenance1", "slsa.json"), 0);
        assert_code(&attest("vuln", report), 0);
    }
    let host = reg.host();
    let policy = |vuln: &str, branch: &str| {
        format!(
            r#"apiVersion: sigil/v1
kind: ImagePolicy
rules:
  - name: apps
    images: ["{host}/app/*"]
    authorities: [{{name: ci, key: {{path: sigil.pub}}, transparencyLog: ignore}}]
    attestations:
      - predicateType: slsaprovenance1
        slsa: {{sourceUri: github.com/org/repo, sourceBranch: {branch}}}
        checks: ["predicate.runDetails.builder.id=https://example.com/builder"]
      - predicateType: vuln
        vulnerabilities: {vuln}
"#
        )
    };
    write_policy(d, "none-critical.yaml", &policy("{maxSeverity: high}", "main"));
    let out = gate(d, &["--policy", "none-critical.yaml", &clean, &critical]);
    assert_code(&out, 12);
    let v = verdicts(&out);
    assert_eq!(v[0]["admission"], "allow", "{}", v[0]);
    assert_eq!(
        v[0]["attestations"],
        serde_json::json!(["https://slsa.dev/provenance/v1", "https://cosign.sigstore.dev/attestation/vuln/v1"])
    );
    assert_eq!(v[1]["admission"], "deny");
    let m = v[1]["message"].as_str().unwrap();
    assert!(m.contains("CVE-C (critical)") && !m.contains("CVE-F"), "{m}");
    // Ignoring the critical one leaves the fixable medium one, denied under `fixable: deny`.
    write_policy(d, "fixable.yaml", &policy("{maxSeverity: high, fixable: deny, ignore: [CVE-C]}", "main"));
    let out = gate(d, &["--policy", "fixable.yaml", &critical]);
    assert_code(&out, 12);
    assert!(verdicts(&out)[0]["message"].as_str().unwrap().contains("CVE-F (medium, fix available)"));
    write_policy(d, "ignored.yaml", &policy("{maxSeverity: high, ignore: [CVE-C]}", "main"));
    assert_code(&gate(d, &["--policy", "ignored.yaml", &critical]), 0);
    // The SLSA expectation names the field and both values.
    write_policy(d, "release.yaml", &policy("{maxSeverity: critical}", "release"));
    let out = gate(d, &["--policy", "release.yaml", &clean]);
    assert_code(&out, 12);
    let m = verdicts(&out)[0]["message"].as_str().unwrap().to_owned();
    assert!(m.contains(r#"source branch: expected "release", statement has "main""#), "{m}");
}

#[test]
fn a_registry_that_cannot_be_reached_denies_under_enforce_and_warns_under_warn() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_code(&sigil(d, &["generate-key-pair"]), 0);
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let host = format!("127.0.0.1:{port}");
    let yaml = |mode: &str| {
        format!(
            "apiVersion: sigil/v1\nkind: ImagePolicy\nrules:\n  - name: r\n    images: [\"{host}/**\"]\n    mode: {mode}\n    authorities: [{{name: k, key: {{path: sigil.pub}}, transparencyLog: ignore}}]\n"
        )
    };
    write_policy(d, "enforce.yaml", &yaml("enforce"));
    write_policy(d, "warn.yaml", &yaml("warn"));
    let image = format!("{host}/app:v1");
    let out = gate(d, &["--policy", "enforce.yaml", "--timeout", "5", &image]);
    assert_code(&out, 14);
    let v = verdicts(&out);
    assert_eq!(v[0]["outcome"]["result"], "could-not-check");
    assert!(v[0]["message"].as_str().unwrap().contains("could not check"), "{}", v[0]);
    let out = gate(d, &["--policy", "warn.yaml", "--timeout", "5", &image]);
    assert_code(&out, 0);
    assert_eq!(verdicts(&out)[0]["admission"], "warn");
    // By digest the registry is needed for the signatures: the same.
    let by_digest = format!("{host}/app@sha256:{}", "a".repeat(64));
    assert_code(&gate(d, &["--policy", "enforce.yaml", "--timeout", "5", &by_digest]), 14);
}

#[test]
fn images_signed_by_cosign_in_both_formats_pass_the_gate() {
    let reg = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let env = [("COSIGN_PASSWORD", PASSWORD)];
    assert_code(&cosign_env(d, &["generate-key-pair"], &env), 0);
    let legacy = push(&reg, "cosign/legacy", "v1");
    let bundle = push(&reg, "cosign/bundle", "v1");
    let unsigned = push(&reg, "cosign/unsigned", "v1");
    let out = cosign_env(
        d,
        &["sign", "--yes", "--tlog-upload=false", "--allow-http-registry", "--key", "cosign.key", &legacy],
        &env,
    );
    assert_code(&out, 0);
    // cosign 3 with a signing configuration that names no log (and the trusted root it
    // needs), as tests/bundle_interop.rs signs.
    let common = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/cosign3/common");
    let (config, root) = (common.join("signing-config.json"), common.join("trusted-root.json"));
    let out = cosign3_env(
        d,
        &[
            "sign",
            "--yes",
            "--allow-http-registry",
            "--key",
            "cosign.key",
            "--signing-config",
            config.to_str().unwrap(),
            "--trusted-root",
            root.to_str().unwrap(),
            &bundle,
        ],
        &env,
    );
    assert_code(&out, 0);
    let host = reg.host();
    write_policy(
        d,
        "policy.yaml",
        &format!(
            "apiVersion: sigil/v1\nkind: ImagePolicy\nrules:\n  - name: r\n    images: [\"{host}/cosign/*\"]\n    authorities: [{{name: cosign, key: {{path: cosign.pub}}, transparencyLog: ignore}}]\n"
        ),
    );
    let out = gate(d, &["--policy", "policy.yaml", &legacy, &bundle, &unsigned]);
    assert_code(&out, 12);
    let v = verdicts(&out);
    assert_eq!(v[0]["admission"], "allow", "{}", stderr(&out));
    assert_eq!(v[1]["admission"], "allow", "{}", stderr(&out));
    assert_eq!(v[2]["admission"], "deny");
    assert!(v[2]["message"].as_str().unwrap().contains("the image has no signatures"), "{}", v[2]);
}

/// A manifest stream with a Deployment (init, app and ephemeral containers, one image already
/// pinned), a Service and a CronJob, with comments, as a user writes them.
fn manifests(host: &str, pinned_digest: &str) -> String {
    format!(
        r#"# the shop
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web   # the front end
spec:
  selector: {{matchLabels: {{app: web}}}}
  template:
    metadata: {{labels: {{app: web}}}}
    spec:
      initContainers:
      - name: init
        image: {host}/shop/init:v1
      containers:
      - name: app
        image: "{host}/shop/app:v1"
      - name: pinned
        image: {host}/shop/app@{pinned_digest}
      ephemeralContainers:
      - name: debug
        image: '{host}/shop/debug'
---
apiVersion: v1
kind: Service
metadata: {{name: web}}
spec: {{ports: [{{port: 80}}]}}
---
apiVersion: batch/v1
kind: CronJob
metadata: {{name: nightly, namespace: jobs}}
spec:
  schedule: "0 3 * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers:
          - {{name: report, image: {host}/shop/report:v1}}
"#
    )
}

#[test]
fn manifests_are_judged_container_by_container_and_pinned_in_place() {
    let reg = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_code(&sigil(d, &["generate-key-pair"]), 0);
    let host = reg.host();
    let mut digests = std::collections::BTreeMap::new();
    for (repo, tag) in [("shop/init", "v1"), ("shop/app", "v1"), ("shop/debug", "latest"), ("shop/report", "v1")] {
        let by_digest = push(&reg, repo, tag);
        assert_code(&sigil(d, &["sign", "--allow-http-registry", "--key", "sigil.key", &by_digest]), 0);
        digests.insert(repo, by_digest.split('@').nth(1).unwrap().to_owned());
    }
    write_policy(
        d,
        "policy.yaml",
        &format!(
            "apiVersion: sigil/v1\nkind: ImagePolicy\nrules:\n  - name: shop\n    images: [\"{host}/shop/**\"]\n    authorities: [{{name: k, key: {{path: sigil.pub}}, transparencyLog: ignore}}]\n"
        ),
    );
    let text = manifests(&host, &digests["shop/app"]);
    std::fs::write(d.join("app.yaml"), &text).unwrap();
    let out = gate(d, &["--policy", "policy.yaml", "-f", "app.yaml", "--pin"]);
    assert_code(&out, 0);
    let v = verdicts(&out);
    assert_eq!(v.len(), 5, "app, pinned, init, debug, report");
    let classes: Vec<&str> = v.iter().map(|x| x["source"]["class"].as_str().unwrap()).collect();
    assert_eq!(classes, ["containers", "containers", "initContainers", "ephemeralContainers", "containers"]);
    assert_eq!(v[4]["source"]["kind"], "CronJob");
    assert_eq!(v[4]["source"]["document"], 3);
    assert_eq!(v[4]["source"]["pointer"], "/spec/jobTemplate/spec/template/spec/containers/0/image");
    let keys = v[4]["source"].as_object().unwrap().keys().cloned().collect::<Vec<_>>().join(",");
    assert_eq!(keys, "class,container,document,file,kind,name,namespace,pointer");
    assert!(v.iter().all(|x| x["admission"] == "allow"), "{}", stderr(&out));
    // Everything but the four tagged images is as written: comments, quotes, the Service.
    let want = text
        .replace(&format!("{host}/shop/init:v1"), &format!("{host}/shop/init:v1@{}", digests["shop/init"]))
        .replace(&format!("\"{host}/shop/app:v1\""), &format!("\"{host}/shop/app:v1@{}\"", digests["shop/app"]))
        .replace(&format!("'{host}/shop/debug'"), &format!("'{host}/shop/debug@{}'", digests["shop/debug"]))
        .replace(&format!("{host}/shop/report:v1"), &format!("{host}/shop/report:v1@{}", digests["shop/report"]));
    assert_eq!(std::fs::read_to_string(d.join("app.yaml")).unwrap(), want);
    // Judged again, pinned: nothing left to pin, same verdicts.
    assert_code(&gate(d, &["--policy", "policy.yaml", "-f", "app.yaml", "--pin"]), 0);
    assert_eq!(std::fs::read_to_string(d.join("app.yaml")).unwrap(), want);

    // From stdin, --pin prints the pinned manifests on stdout instead of the verdicts.
    let mut c = std::process::Command::new(sigil_bin());
    c.args(["gate", "--allow-http-registry", "--policy", "policy.yaml", "-f", "-", "--pin"]);
    isolate(&mut c, d, &[]);
    let mut child = c
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_code(&out, 0);
    assert_eq!(stdout(&out), want);

    // An unsigned image denies the whole run, and nothing is written.
    let unsigned = push(&reg, "shop/unsigned", "v1");
    let tag = format!("{host}/shop/unsigned:v1");
    let bad = format!("{text}---\napiVersion: v1\nkind: Pod\nmetadata: {{name: p}}\nspec:\n  containers:\n  - {{name: c, image: {tag}}}\n");
    std::fs::write(d.join("bad.yaml"), &bad).unwrap();
    let out = gate(d, &["--policy", "policy.yaml", "-f", "bad.yaml", "--pin"]);
    assert_code(&out, 12);
    let v = verdicts(&out);
    assert_eq!(v[5]["admission"], "deny");
    assert_eq!(v[5]["digest"].as_str(), unsigned.split('@').nth(1));
    assert_eq!(v[5]["source"]["kind"], "Pod");
    assert!(stderr(&out).contains("nothing pinned"), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(d.join("bad.yaml")).unwrap(), bad);
    // A manifest the gate cannot read is an error before anything is judged.
    std::fs::write(d.join("dup.yaml"), "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: c\n    image: a\n    image: b\n").unwrap();
    let out = gate(d, &["--policy", "policy.yaml", "-f", "dup.yaml"]);
    assert_code(&out, 1);
    assert!(stderr(&out).contains("dup.yaml"), "{}", stderr(&out));
}

#[test]
fn gate_decisions_are_signed_as_verification_summaries() {
    let reg = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_code(&sigil(d, &["generate-key-pair"]), 0);
    assert_code(&sigil(d, &["generate-key-pair", "--output-key-prefix", "gate"]), 0);
    let signed = push(&reg, "app/signed", "v1");
    let unsigned = push(&reg, "app/unsigned", "v1");
    assert_code(&sigil(d, &["sign", "--allow-http-registry", "--key", "sigil.key", &signed]), 0);
    let host = reg.host();
    write_policy(
        d,
        "policy.yaml",
        &format!(
            "apiVersion: sigil/v1\nkind: ImagePolicy\nrules:\n  - name: apps\n    images: [\"{host}/app/*\"]\n    verifiedLevels: [SLSA_BUILD_LEVEL_2]\n    authorities: [{{name: k, key: {{path: sigil.pub}}, transparencyLog: ignore}}]\n"
        ),
    );
    let out = gate(
        d,
        &[
            "--policy",
            "policy.yaml",
            "--vsa-key",
            "gate.key",
            "--tlog-upload=false",
            "--vsa-verifier-id",
            "https://gate.example/sigil",
            &signed,
            &unsigned,
        ],
    );
    assert_code(&out, 12);
    let v = verdicts(&out);
    assert!(v[0]["summary"]["attestation"].is_string(), "{}", v[0]);
    assert!(v[1]["summary"]["attestation"].is_string(), "a failed decision is summarised too: {}", v[1]);
    let check = |image: &str, result: &str| {
        sigil(
            d,
            &[
                "verify-attestation",
                "--allow-http-registry",
                "--key",
                "gate.pub",
                "--type",
                "vsa",
                "--check",
                &format!("predicate.verificationResult={result}"),
                "--check",
                "predicate.verifier.id=https://gate.example/sigil",
                image,
            ],
        )
    };
    let out = check(&signed, "PASSED");
    assert_code(&out, 0);
    let st: Value = serde_json::from_str(stdout(&out).lines().next().unwrap()).unwrap();
    assert_eq!(st["predicate"]["verifiedLevels"], serde_json::json!(["SLSA_BUILD_LEVEL_2"]));
    assert!(st["predicate"]["policy"]["uri"].as_str().unwrap().ends_with("/policy.yaml"));
    assert_eq!(
        st["predicate"]["policy"]["digest"]["sha256"].as_str().unwrap(),
        sigil::digest::Digest::sha256(&std::fs::read(d.join("policy.yaml")).unwrap()).hex()
    );
    assert_code(&check(&unsigned, "FAILED"), 0);
    assert_code(&check(&unsigned, "PASSED"), 12);
    // A later gate can rely on the decision: the release key's signature and a PASSED summary
    // signed by the gate's key.
    write_policy(
        d,
        "later.yaml",
        &format!(
            "apiVersion: sigil/v1\nkind: ImagePolicy\nrules:\n  - name: apps\n    images: [\"{host}/app/*\"]\n    authorities:\n      - {{name: release, key: {{path: sigil.pub}}, transparencyLog: ignore}}\n      - {{name: gate, key: {{path: gate.pub}}, transparencyLog: ignore}}\n    attestations:\n      - predicateType: vsa\n        signedBy: [gate]\n        checks: [predicate.verificationResult=PASSED]\n"
        ),
    );
    let out = gate(d, &["--policy", "later.yaml", &signed, &unsigned]);
    assert_code(&out, 12);
    let v = verdicts(&out);
    assert_eq!(v[0]["admission"], "allow", "{}", v[0]);
    assert_eq!(v[0]["attestations"], serde_json::json!(["https://slsa.dev/verification_summary/v1"]));
    let m = v[1]["message"].as_str().unwrap();
    assert!(m.contains("predicate.verificationResult"), "the FAILED summary does not pass: {m}");
}

#[test]
fn the_kubernetes_deployment_is_what_docs_webhook_md_says() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/kubernetes");
    let mut objects = Vec::new();
    for f in ["namespace.yaml", "deployment.yaml", "service.yaml", "webhooks.yaml", "policy-configmap.yaml"] {
        let text = std::fs::read_to_string(dir.join(f)).unwrap();
        // The gate reads them as it reads any manifest (no key twice, no tags, …).
        sigil::workloads::parse_manifests(&text).unwrap_or_else(|e| panic!("{f}: {e}"));
        for doc in serde_yaml_ng::Deserializer::from_str(&text) {
            objects.push(<Value as serde::Deserialize>::deserialize(doc).unwrap());
        }
    }
    let find = |kind: &str| objects.iter().find(|o| o["kind"] == kind).unwrap_or_else(|| panic!("no {kind}"));
    let dep = find("Deployment");
    assert_eq!(dep["spec"]["replicas"], 2);
    let pod = &dep["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    let c = &pod["containers"][0];
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
    // Its arguments are ones `sigil webhook` takes: with files that do not exist it fails on
    // the policy file (1), not on the command line (2).
    let args: Vec<String> = c["args"].as_array().unwrap().iter().map(|a| a.as_str().unwrap().to_owned()).collect();
    let tmp = tempfile::tempdir().unwrap();
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = sigil(tmp.path(), &a);
    assert_code(&out, 1);
    assert!(stderr(&out).contains("policy"), "{}", stderr(&out));
    let policy = find("ConfigMap")["data"]["policy.yaml"].as_str().unwrap().to_owned();
    std::fs::write(tmp.path().join("policy.yaml"), policy).unwrap();
    assert_code(&sigil(tmp.path(), &["policy", "check", "policy.yaml"]), 0);
    for (kind, path) in [("ValidatingWebhookConfiguration", "/validate"), ("MutatingWebhookConfiguration", "/mutate")] {
        let w = &find(kind)["webhooks"][0];
        assert_eq!(w["failurePolicy"], "Fail", "{kind}");
        assert_eq!(w["clientConfig"]["service"]["path"], path);
        assert_eq!(w["admissionReviewVersions"], serde_json::json!(["v1"]));
        let left_out = &w["namespaceSelector"]["matchExpressions"][0];
        assert_eq!(left_out["operator"], "NotIn");
        assert_eq!(left_out["values"], serde_json::json!(["kube-system", "sigil-system"]));
        assert!(w["timeoutSeconds"].as_u64().unwrap() > 8, "above the webhook's --deadline");
    }
}

#[test]
fn a_grype_report_attested_as_its_own_predicate_is_judged_too() {
    let reg = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_code(&sigil(d, &["generate-key-pair"]), 0);
    let image = push(&reg, "app/grype", "v1");
    assert_code(&sigil(d, &["sign", "--allow-http-registry", "--key", "sigil.key", &image]), 0);
    std::fs::write(
        d.join("grype.json"),
        r#"{"matches":[{"vulnerability":{"id":"GHSA-x","severity":"Medium","fix":{"state":"fixed","versions":["1.2.4"]}},"artifact":{"name":"lib","version":"1.2.3"}}],"descriptor":{"name":"grype"}}"#,
    )
    .unwrap();
    let grype = "https://anchore.com/grype/report/v1";
    let out = sigil(
        d,
        &[
            "attest",
            "--allow-http-registry",
            "--key",
            "sigil.key",
            "--type",
            grype,
            "--predicate",
            "grype.json",
            &image,
        ],
    );
    assert_code(&out, 0);
    let host = reg.host();
    let policy = |condition: &str| {
        format!(
            "apiVersion: sigil/v1\nkind: ImagePolicy\nrules:\n  - name: apps\n    images: [\"{host}/app/*\"]\n    authorities: [{{name: k, key: {{path: sigil.pub}}, transparencyLog: ignore}}]\n    attestations:\n      - predicateType: {grype}\n        vulnerabilities: {condition}\n"
        )
    };
    write_policy(d, "medium.yaml", &policy("{maxSeverity: medium}"));
    assert_code(&gate(d, &["--policy", "medium.yaml", &image]), 0);
    write_policy(d, "low.yaml", &policy("{maxSeverity: low}"));
    let out = gate(d, &["--policy", "low.yaml", &image]);
    assert_code(&out, 12);
    assert!(verdicts(&out)[0]["message"].as_str().unwrap().contains("GHSA-x (medium)"), "{}", stdout(&out));
    write_policy(d, "fixable.yaml", &policy("{fixable: deny}"));
    let out = gate(d, &["--policy", "fixable.yaml", &image]);
    assert_code(&out, 12);
    assert!(verdicts(&out)[0]["message"].as_str().unwrap().contains("fix available"), "{}", stdout(&out));
}
