//! sigil's own checks on Sigstore bundles, beyond the conformance suite, on bundles derived in
//! memory from the suite's real production data (vendored in testdata/vectors), plus bad
//! input at the CLI; and, on bundles from a private Sigstore instance
//! (testdata/bundle-profiles), the certificate-profile and timestamp checks where sigil must
//! agree with the reference clients.

mod common;

use std::path::{Path, PathBuf};

use base64::Engine as _;
use common::*;
use serde_json::Value;

const IDENTITY: &str = "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main";
const ISSUER: &str = "https://token.actions.githubusercontent.com";

fn public_good(suite: &Path) -> String {
    suite.join("../../trust/public-good.trusted_root.json").to_str().unwrap().to_string()
}

fn bundle(suite: &Path, case: &str) -> Value {
    serde_json::from_slice(&std::fs::read(suite.join(case).join("bundle.sigstore.json")).unwrap()).unwrap()
}

fn verify_keyless(d: &Path, suite: &Path, bundle: &Value, extra: &[&str]) -> std::process::Output {
    let path = d.join("b.json");
    std::fs::write(&path, serde_json::to_vec(bundle).unwrap()).unwrap();
    let root = public_good(suite);
    let a = suite.join("a.txt");
    let mut args = vec!["verify-blob", "--bundle", path.to_str().unwrap(), "--trusted-root", &root];
    args.extend_from_slice(extra);
    args.push(a.to_str().unwrap());
    sigil(d, &args)
}

#[test]
fn root_certificate_in_bundle_chain_is_rejected() {
    let suite = conformance_suite();
    let dir = tempfile::tempdir().unwrap();
    let mut b = bundle(&suite, "happy-path-v0.1");
    let ids = ["--certificate-identity", IDENTITY, "--certificate-oidc-issuer", ISSUER];
    assert_code(&verify_keyless(dir.path(), &suite, &b, &ids), 0);
    // The suite's root-cert case carries [leaf, intermediate, root]: append the CA part.
    let with_root = bundle(&suite, "bundle-with-root-cert_fail");
    let extra =
        with_root["verificationMaterial"]["x509CertificateChain"]["certificates"].as_array().unwrap()[1..].to_vec();
    b["verificationMaterial"]["x509CertificateChain"]["certificates"].as_array_mut().unwrap().extend(extra);
    let out = verify_keyless(dir.path(), &suite, &b, &ids);
    assert_code(&out, 12);
    assert!(stderr(&out).contains("certificate chain: the bundle includes a self-signed root"), "{}", stderr(&out));
}

#[test]
fn unknown_intoto_statement_type_is_rejected() {
    let suite = conformance_suite();
    let dir = tempfile::tempdir().unwrap();
    let mut b = bundle(&suite, "happy-path-intoto-in-dsse-v3");
    let b64 = base64::engine::general_purpose::STANDARD;
    let payload = String::from_utf8(b64.decode(b["dsseEnvelope"]["payload"].as_str().unwrap()).unwrap()).unwrap();
    let changed = payload.replace("https://in-toto.io/Statement/v1", "https://example.com/Statement/v9");
    b["dsseEnvelope"]["payload"] = Value::String(b64.encode(changed));
    let out = verify_keyless(
        dir.path(),
        &suite,
        &b,
        &["--certificate-identity", IDENTITY, "--certificate-oidc-issuer", ISSUER],
    );
    assert_code(&out, 12);
    assert!(stderr(&out).contains("in-toto statement: unknown statement _type"), "{}", stderr(&out));
}

/// A statement with `subject` and `Subject` means two things to sigil and to Go verifiers.
// see: issue 8 §6
#[test]
fn bundle_statement_with_keys_differing_only_in_case_is_rejected() {
    let suite = conformance_suite();
    let dir = tempfile::tempdir().unwrap();
    let mut b = bundle(&suite, "happy-path-intoto-in-dsse-v3");
    let b64 = base64::engine::general_purpose::STANDARD;
    let payload = String::from_utf8(b64.decode(b["dsseEnvelope"]["payload"].as_str().unwrap()).unwrap()).unwrap();
    let changed = payload.replacen('{', r#"{"Subject":[],"#, 1);
    b["dsseEnvelope"]["payload"] = Value::String(b64.encode(changed));
    let out = verify_keyless(
        dir.path(),
        &suite,
        &b,
        &["--certificate-identity", IDENTITY, "--certificate-oidc-issuer", ISSUER],
    );
    assert_code(&out, 12);
    assert!(stderr(&out).contains("in-toto statement: ambiguous statement"), "{}", stderr(&out));
}

#[test]
fn identity_regexps_are_anchored() {
    let suite = conformance_suite();
    let dir = tempfile::tempdir().unwrap();
    let b = bundle(&suite, "happy-path-v0.3");
    let whole = r"https://github\.com/sigstore-conformance/.*@refs/heads/main";
    assert_code(
        &verify_keyless(
            dir.path(),
            &suite,
            &b,
            &["--certificate-identity-regexp", whole, "--certificate-oidc-issuer", ISSUER],
        ),
        0,
    );
    assert_code(
        &verify_keyless(
            dir.path(),
            &suite,
            &b,
            &[
                "--certificate-identity",
                IDENTITY,
                "--certificate-oidc-issuer-regexp",
                r"https://token\.actions\.githubusercontent\.com",
            ],
        ),
        0,
    );
    // A pattern that matches only part of the identity (cosign would accept it).
    let out = verify_keyless(
        dir.path(),
        &suite,
        &b,
        &["--certificate-identity-regexp", "sigstore-conformance", "--certificate-oidc-issuer", ISSUER],
    );
    assert_code(&out, 12);
    assert!(stderr(&out).contains("certificate identity"), "{}", stderr(&out));
    let out = verify_keyless(
        dir.path(),
        &suite,
        &b,
        &["--certificate-identity", IDENTITY, "--certificate-oidc-issuer-regexp", "token.actions"],
    );
    assert_code(&out, 12);
    assert!(stderr(&out).contains("OIDC issuer"), "{}", stderr(&out));
    // Exact values must match exactly.
    let out = verify_keyless(
        dir.path(),
        &suite,
        &b,
        &["--certificate-identity", &IDENTITY[..IDENTITY.len() - 1], "--certificate-oidc-issuer", ISSUER],
    );
    assert_code(&out, 12);
}

#[test]
fn bad_bundles_and_usage() {
    let suite = conformance_suite();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let root = public_good(&suite);
    let a = suite.join("a.txt");
    let a = a.to_str().unwrap();
    let run = |bytes: &[u8]| {
        std::fs::write(d.join("bad.json"), bytes).unwrap();
        sigil(
            d,
            &[
                "verify-blob",
                "--bundle",
                "bad.json",
                "--trusted-root",
                &root,
                "--certificate-identity",
                IDENTITY,
                "--certificate-oidc-issuer",
                ISSUER,
                a,
            ],
        )
    };
    for (bytes, what) in [
        (b"{not json".to_vec(), "malformed JSON"),
        (vec![0xff, 0xfe, 0x00], "not UTF-8"),
        (br#"{"mediaType":"application/vnd.dev.sigstore.bundle.v0.9+json"}"#.to_vec(), "unknown media type"),
        (vec![b' '; 17 << 20], "absurd size"),
    ] {
        let out = run(&bytes);
        assert_ne!(code(&out), 0, "{what} accepted");
        assert!(stdout(&out).is_empty(), "{what}: nothing on stdout");
        assert!(stderr(&out).contains("bundle") || stderr(&out).contains("larger than"), "{what}: {}", stderr(&out));
    }
    // Keyless needs an identity and an issuer; a key excludes them.
    let b = suite.join("happy-path-v0.3/bundle.sigstore.json");
    let b = b.to_str().unwrap();
    let out = sigil(d, &["verify-blob", "--bundle", b, "--certificate-identity", IDENTITY, a]);
    assert_code(&out, 2);
    assert!(stderr(&out).contains("identity and an issuer"), "{}", stderr(&out));
    let out = sigil(
        d,
        &["verify-blob", "--bundle", b, "--certificate-identity-regexp", "(", "--certificate-oidc-issuer", ISSUER, a],
    );
    assert_code(&out, 2);
    // The embedded public-good root is the default, and says so.
    let out = sigil(
        d,
        &["verify-blob", "--bundle", b, "--certificate-identity", IDENTITY, "--certificate-oidc-issuer", ISSUER, a],
    );
    assert_code(&out, 0);
    assert!(stderr(&out).contains("embedded"), "{}", stderr(&out));
    let v: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(v["identity"], IDENTITY);
    assert_eq!(v["issuer"], ISSUER);
    assert_eq!(v["verified"], true);
    // trusted-root show describes the embedded root.
    let out = sigil(d, &["trusted-root", "show"]);
    assert_code(&out, 0);
    let t: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(t["source"]["kind"], "embedded");
    assert!(t["certificateAuthorities"].as_u64().unwrap() > 0);
    let out = sigil_env(d, &["trusted-root", "show"], &[("SIGIL_TRUSTED_ROOT", &root)]);
    let t: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(t["source"]["kind"], "file");
}

/// verify-blob's JSON is a stable interface: unknown fields are refused here.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct BlobVerified {
    #[serde(rename = "mediaType")]
    media_type: String,
    artifact: String,
    identity: Option<String>,
    issuer: Option<String>,
    #[serde(rename = "integratedTime")]
    integrated_time: Option<String>,
    timestamps: Vec<String>,
    #[serde(rename = "ignoredTimestamps")]
    ignored_timestamps: Vec<IgnoredTimestamp>,
    #[serde(rename = "tlogVerified")]
    tlog_verified: bool,
    bundle: String,
    verified: bool,
    #[serde(rename = "trustRoot")]
    trust_root: TrustRoot,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct IgnoredTimestamp {
    index: u64,
    kind: String,
    reason: String,
}

#[derive(serde::Deserialize, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
struct TrustRoot {
    source: String,
    path: Option<String>,
    url: Option<String>,
    sha256: String,
}

#[test]
fn trusted_root_in_use_is_always_named() {
    // see: issue 8 §5
    let suite = conformance_suite();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let bytes = std::fs::read(public_good(&suite)).unwrap();
    let root = d.join("replaced-root.json");
    std::fs::write(&root, &bytes).unwrap();
    let root = root.to_str().unwrap();
    let sha256 = sigil::digest::Digest::sha256(&bytes).to_string();
    let b = suite.join("happy-path-v0.3/bundle.sigstore.json");
    let a = suite.join("a.txt");
    let args = |extra: &[&'static str]| {
        let mut v: Vec<String> = vec!["verify-blob".into(), "--bundle".into(), b.display().to_string()];
        v.extend(["--certificate-identity", IDENTITY, "--certificate-oidc-issuer", ISSUER].map(String::from));
        v.extend(extra.iter().map(|s| s.to_string()));
        v.push(a.display().to_string());
        v
    };
    let run = |args: &[String], env: &[(&str, &str)]| {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut env = env.to_vec();
        env.push(("SIGIL_PASSWORD", PASSWORD));
        sigil_env(d, &args, &env)
    };
    let want = TrustRoot { source: "file".into(), path: Some(root.into()), url: None, sha256: sha256.clone() };
    let mut with_flag = args(&[]);
    with_flag.splice(3..3, ["--trusted-root".to_string(), root.to_string()]);
    for out in [run(&with_flag, &[]), run(&args(&[]), &[("SIGIL_TRUSTED_ROOT", root)])] {
        assert_code(&out, 0);
        assert!(stderr(&out).contains(&format!("trusted root from the file {root} ({sha256})")), "{}", stderr(&out));
        let v: BlobVerified = serde_json::from_str(stdout(&out).trim()).unwrap();
        assert_eq!(v.trust_root, want);
    }
    // The embedded root: named with its digest on stderr and in JSON.
    let out = run(&args(&[]), &[]);
    assert_code(&out, 0);
    let v: BlobVerified = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(v.trust_root.source, "embedded");
    assert!(stderr(&out).contains(&format!("embedded in this build ({})", v.trust_root.sha256)), "{}", stderr(&out));
    // trusted-root show says the same.
    let out = sigil_env(d, &["trusted-root", "show"], &[("SIGIL_TRUSTED_ROOT", root)]);
    let t: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(t["trustRoot"], serde_json::json!({"source": "file", "path": root, "sha256": sha256}));
    assert!(stderr(&out).contains(&sha256), "{}", stderr(&out));
}

/// The media type is unsigned: relabelling a v0.3 bundle as v0.1 (which needs no inclusion
/// proof) and dropping its proof must not pass.
#[test]
fn rewritten_media_type_does_not_relax_checks() {
    let suite = conformance_suite();
    let dir = tempfile::tempdir().unwrap();
    let mut b = bundle(&suite, "happy-path-v0.3");
    b["mediaType"] = Value::String("application/vnd.dev.sigstore.bundle+json;version=0.1".into());
    for t in b["verificationMaterial"]["tlogEntries"].as_array_mut().unwrap() {
        t.as_object_mut().unwrap().remove("inclusionProof");
    }
    let out = verify_keyless(
        dir.path(),
        &suite,
        &b,
        &["--certificate-identity", IDENTITY, "--certificate-oidc-issuer", ISSUER],
    );
    assert_code(&out, 12);
    assert!(stderr(&out).contains("bundle format: media type"), "{}", stderr(&out));
}

// Issue 8 §9: bundles from a private Sigstore instance (testdata/bundle-profiles, README there),
// checked where sigil disagreed with the reference clients.

const PROFILE_IDENTITY: &str = "signer@example.com";
const PROFILE_ISSUER: &str = "https://issuer.example.com";

fn profiles() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/bundle-profiles")
}

/// `sigil verify-blob` on a profile case, with its trusted root and its key or identity.
fn verify_profile(case: &str) -> std::process::Output {
    let dir = profiles().join(case);
    let work = tempfile::tempdir().unwrap();
    let (bundle, root, key) = (dir.join("bundle.sigstore.json"), dir.join("trusted_root.json"), dir.join("key.pub"));
    let artifact = profiles().join("artifact.txt");
    let mut args = vec!["verify-blob", "--bundle", bundle.to_str().unwrap(), "--trusted-root", root.to_str().unwrap()];
    if key.exists() {
        args.extend(["--key", key.to_str().unwrap()]);
    } else {
        args.extend(["--certificate-identity", PROFILE_IDENTITY, "--certificate-oidc-issuer", PROFILE_ISSUER]);
    }
    args.push(artifact.to_str().unwrap());
    sigil(work.path(), &args)
}

/// Verified: the JSON document on stdout.
fn verified_profile(case: &str) -> Value {
    let out = verify_profile(case);
    assert_code(&out, 0);
    serde_json::from_str(stdout(&out).trim()).unwrap()
}

/// Rejected with exit 12, the checklist naming `check`; returns stderr.
fn rejected_profile(case: &str, check: &str) -> String {
    let out = verify_profile(case);
    assert_code(&out, 12);
    assert!(stdout(&out).is_empty(), "{case}: nothing on stdout");
    let err = stderr(&out);
    assert!(err.contains(&format!("✗ {check}:")), "{case}: {err}");
    err
}

/// The ignored timestamps of a verified result, as (index, kind).
fn ignored(v: &Value) -> Vec<(u64, String)> {
    v["ignoredTimestamps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            assert!(!t["reason"].as_str().unwrap().is_empty());
            (t["index"].as_u64().unwrap(), t["kind"].as_str().unwrap().to_owned())
        })
        .collect()
}

/// The verify-blob output schema, pinned: these keys and no others.
#[test]
fn verify_blob_output_schema_is_pinned() {
    // see: issue 8 §9
    let v = verified_profile("happy-path");
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "artifact",
            "bundle",
            "identity",
            "ignoredTimestamps",
            "issuer",
            "mediaType",
            "timestamps",
            "tlogVerified",
            "trustRoot",
            "verified"
        ],
        "a Rekor v2 bundle has no integratedTime"
    );
    let _: BlobVerified = serde_json::from_value(v.clone()).unwrap();
    assert_eq!(v["identity"], PROFILE_IDENTITY);
    assert_eq!(v["issuer"], PROFILE_ISSUER);
    assert_eq!(v["timestamps"].as_array().unwrap().len(), 1);
    assert_eq!(v["ignoredTimestamps"], serde_json::json!([]));
    assert_eq!(v["tlogVerified"], true);
    assert_eq!(v["verified"], true);
    let v = verified_profile("managed-key-happy-path");
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        ["artifact", "bundle", "ignoredTimestamps", "mediaType", "timestamps", "tlogVerified", "trustRoot", "verified"]
    );
    let _: BlobVerified = serde_json::from_value(v).unwrap();
}

#[test]
fn intermediate_not_ca_is_rejected() {
    // see: issue 8 §9
    let err = rejected_profile("intermediate-not-ca", "certificate chain");
    assert!(err.contains("not a CA"), "{err}");
}

#[test]
fn intermediate_without_keycertsign_is_rejected() {
    // see: issue 8 §9
    let err = rejected_profile("intermediate-without-keycertsign", "certificate chain");
    assert!(err.contains("lacks keyCertSign"), "{err}");
}

#[test]
fn intermediate_expired_at_signing_time_is_rejected() {
    // see: issue 8 §9
    let err = rejected_profile("intermediate-expired", "certificate chain");
    assert!(err.contains("had expired at the signing time"), "{err}");
}

#[test]
fn intermediate_not_yet_valid_at_signing_time_is_rejected() {
    // see: issue 8 §9
    let err = rejected_profile("intermediate-not-yet-valid", "certificate chain");
    assert!(err.contains("not yet valid at the signing time"), "{err}");
}

#[test]
fn leaf_without_key_usage_is_rejected() {
    // see: issue 8 §9
    let err = rejected_profile("leaf-without-key-usage", "certificate");
    assert!(err.contains("no key usage extension"), "{err}");
}

#[test]
fn leaf_without_digital_signature_is_rejected() {
    // see: issue 8 §9
    let err = rejected_profile("leaf-without-digital-signature", "certificate");
    assert!(err.contains("lacks digitalSignature"), "{err}");
}

#[test]
fn unverifiable_timestamp_is_ignored_not_fatal() {
    // see: issue 8 §9
    for (case, kind) in [
        ("timestamp-wrong-message", "wrong-message"),
        ("timestamp-unknown-tsa", "unknown-authority"),
        ("timestamp-outside-tsa-validity", "outside-authority-validity"),
        ("managed-key-timestamp-wrong-message", "wrong-message"),
    ] {
        let out = verify_profile(case);
        assert_code(&out, 0);
        assert!(stderr(&out).contains("ignored RFC 3161 timestamp #0: "), "{case}: {}", stderr(&out));
        let v: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
        assert_eq!(ignored(&v), [(0, kind.to_owned())], "{case}");
        assert_eq!(v["timestamps"].as_array().unwrap().len(), 1, "{case}: the good one counts");
    }
}

#[test]
fn no_verified_timestamp_is_rejected_naming_the_ignored_ones() {
    // see: issue 8 §9
    let err = rejected_profile("timestamp-none-verified", "timestamp");
    assert!(err.contains("RFC 3161 timestamp #0: it is not over this bundle's signature"), "{err}");
    assert!(err.contains("RFC 3161 timestamp #1: no timestamp authority in the trusted root verifies it"), "{err}");
    // Managed keys too: ignoring a timestamp never lets a bundle through without a verified time.
    let err = rejected_profile("managed-key-timestamp-none-verified", "timestamp");
    assert!(err.contains("no verified signing time") && err.contains("#0"), "{err}");
    let err = rejected_profile("managed-key-no-timestamp", "timestamp");
    assert!(err.contains("no verified signing time"), "{err}");
}

#[test]
fn duplicate_timestamp_counts_once() {
    // see: issue 8 §9
    for case in ["timestamp-duplicate", "timestamp-twice-from-one-tsa"] {
        let v = verified_profile(case);
        assert_eq!(v["timestamps"].as_array().unwrap().len(), 1, "{case}");
        assert_eq!(ignored(&v), [(1, "duplicate".to_owned())], "{case}");
    }
}

#[test]
fn self_contradicting_trusted_root_exits_14() {
    // see: issue 8 §9
    let out = verify_profile("trusted-root-contradicts-itself");
    assert_code(&out, 14);
    assert!(stdout(&out).is_empty());
    assert!(stderr(&out).contains("validity window ends before it starts"), "{}", stderr(&out));
    // However the root arrived (TUF cache, embedded), verification says "could not check".
    let dir = profiles().join("trusted-root-contradicts-itself");
    let root = std::fs::read_to_string(dir.join("trusted_root.json")).unwrap();
    let root = sigstore_verify::trust_root::TrustedRoot::from_json(&root).unwrap();
    let trust = sigil::trust::Trust::from_tuf(root, "https://tuf.example.invalid", "/nonexistent");
    let id = sigil::identity::Matcher::Exact(PROFILE_IDENTITY.into());
    let iss = sigil::identity::Matcher::Exact(PROFILE_ISSUER.into());
    let bundle = std::fs::read(dir.join("bundle.sigstore.json")).unwrap();
    let artifact = std::fs::read(profiles().join("artifact.txt")).unwrap();
    let signer = sigil::verify::bundle::Signer::Identity { identity: &id, issuer: &iss };
    let err = sigil::verify::bundle::verify_bundle(
        &bundle,
        sigil::verify::bundle::Artifact::Bytes(&artifact),
        &signer,
        &trust,
    )
    .unwrap_err();
    assert_eq!(err.outcome, sigil::verify::bundle::Outcome::CouldNotCheck, "{err}");
    assert_eq!(err.check, "trusted root");
}

#[test]
fn more_than_32_timestamps_are_refused() {
    // see: issue 8 §9 (each timestamp is now verified on its own: the count is bounded first)
    let dir = profiles().join("happy-path");
    let mut b: Value = serde_json::from_slice(&std::fs::read(dir.join("bundle.sigstore.json")).unwrap()).unwrap();
    let ts = &mut b["verificationMaterial"]["timestampVerificationData"]["rfc3161Timestamps"];
    let one = ts[0].clone();
    *ts = Value::Array(vec![one; 33]);
    let work = tempfile::tempdir().unwrap();
    let path = work.path().join("b.json");
    std::fs::write(&path, serde_json::to_vec(&b).unwrap()).unwrap();
    let (root, artifact) = (dir.join("trusted_root.json"), profiles().join("artifact.txt"));
    let out = sigil(
        work.path(),
        &[
            "verify-blob",
            "--bundle",
            path.to_str().unwrap(),
            "--trusted-root",
            root.to_str().unwrap(),
            "--certificate-identity",
            PROFILE_IDENTITY,
            "--certificate-oidc-issuer",
            PROFILE_ISSUER,
            artifact.to_str().unwrap(),
        ],
    );
    assert_code(&out, 12);
    assert!(stderr(&out).contains("✗ timestamp: the bundle carries 33 RFC 3161 timestamps"), "{}", stderr(&out));
}
