//! sigil's own checks on Sigstore bundles, beyond the conformance suite, on bundles derived in
//! memory from the suite's real production data (../shared/vectors, read by path), plus bad
//! input at the CLI.

mod common;

use std::path::{Path, PathBuf};

use base64::Engine as _;
use common::*;
use serde_json::Value;

const IDENTITY: &str = "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main";
const ISSUER: &str = "https://token.actions.githubusercontent.com";

fn suite() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/vectors/sigstore-conformance/bundle-verify");
    if p.is_dir() {
        Some(p)
    } else {
        eprintln!("\n!!!! ../shared/vectors is ABSENT: bundle checks on production data did NOT run !!!!\n");
        assert!(std::env::var_os("CI").is_none(), "CI must have ../shared/vectors");
        None
    }
}

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
    let Some(suite) = suite() else { return };
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
    let Some(suite) = suite() else { return };
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

#[test]
fn identity_regexps_are_anchored() {
    let Some(suite) = suite() else { return };
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
    let Some(suite) = suite() else { return };
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
    #[serde(rename = "tlogVerified")]
    tlog_verified: bool,
    bundle: String,
    verified: bool,
    #[serde(rename = "trustRoot")]
    trust_root: TrustRoot,
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
    let Some(suite) = suite() else { return };
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
    let Some(suite) = suite() else { return };
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
