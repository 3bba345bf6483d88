//! Signing with a transparency log, a timestamp authority and Fulcio, against the real Sigstore
//! services of the local stack (tests/common/sigstack.rs: Rekor v2, Fulcio, the TSA, a CT log
//! and an OIDC issuer, on loopback), across sigil and cosign 3.1.1, both ways:
//! - sigil keyless `sign-blob`, `attest-blob`, `sign` and `attest` (bundle format) verified by
//!   cosign 3.1.1 with the stack's trusted root and identity and issuer checks, and by sigil;
//! - sigil key-based signing recorded in Rekor v2 with a TSA timestamp, verified by cosign;
//! - cosign 3.1.1 keyless and key-based signatures verified by sigil;
//! - refusals: an expired or foreign-audience token before any request, wrong identity or
//!   issuer, evidence removed from the bundle, and a Rekor (behind a rewriting proxy) that
//!   answers with an entry for other content: signing fails and nothing is written.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;

use common::sigstack::stack;
use common::*;
use serde_json::Value;

const HTTP: &str = "--allow-http-registry";
const ALICE: &str = "alice@example.com";

/// sigil with the stack's signing configuration and trusted root.
fn sigil_stack(d: &Path, args: &[&str]) -> std::process::Output {
    let s = stack();
    let mut a: Vec<&str> = args.to_vec();
    if matches!(args.first(), Some(&"sign") | Some(&"attest") | Some(&"sign-blob") | Some(&"attest-blob")) {
        a.extend(["--signing-config", s.signing_config()]);
    }
    a.extend(["--trusted-root", s.trusted_root()]);
    sigil_env(d, &a, &[("SIGIL_PASSWORD", PASSWORD)])
}

fn cosign3_verify_blob(d: &Path, bundle: &str, file: &str, identity: &str) -> std::process::Output {
    let s = stack();
    cosign3(
        d,
        &[
            "verify-blob",
            "--certificate-identity",
            identity,
            "--certificate-oidc-issuer",
            s.issuer(),
            "--trusted-root",
            s.trusted_root(),
            "--bundle",
            bundle,
            file,
        ],
    )
}

/// sigil verify-blob by identity and issuer, against the stack's trusted root.
fn verify_blob_as(d: &Path, bundle: &str, file: &str, identity: &str, issuer: &str) -> std::process::Output {
    sigil_stack(
        d,
        &[
            "verify-blob",
            "--certificate-identity",
            identity,
            "--certificate-oidc-issuer",
            issuer,
            "--bundle",
            bundle,
            file,
        ],
    )
}

fn blob(d: &Path) -> &'static str {
    std::fs::write(d.join("blob.txt"), b"release artifact\n").unwrap();
    "blob.txt"
}

fn json_line(o: &std::process::Output) -> Value {
    serde_json::from_str(stdout(o).lines().last().unwrap_or_default()).unwrap_or_else(|e| panic!("{e}: {}", stdout(o)))
}

#[test]
fn keyless_sign_blob_verifies_with_cosign3_and_sigil() {
    let d = tempfile::tempdir().unwrap();
    let f = blob(d.path());
    let tok = stack().token(ALICE);
    let o = sigil_stack(d.path(), &["sign-blob", "--identity-token", &tok, "--bundle", "b.json", f]);
    assert_code(&o, 0);
    let out = json_line(&o);
    assert_eq!(out["identity"], ALICE);
    assert_eq!(out["issuer"], stack().issuer());
    assert_eq!(out["tlogVerified"], true);
    assert_eq!(out["timestamps"].as_array().map(Vec::len), Some(1));
    assert!(!stderr(&o).contains(&tok), "the token must never be printed");
    let bundle: Value = serde_json::from_slice(&std::fs::read(d.path().join("b.json")).unwrap()).unwrap();
    assert_eq!(bundle["verificationMaterial"]["tlogEntries"][0]["kindVersion"]["kind"], "hashedrekord");
    assert!(bundle["verificationMaterial"]["certificate"]["rawBytes"].is_string());

    assert_code(&cosign3_verify_blob(d.path(), "b.json", f, ALICE), 0);
    assert_ne!(code(&cosign3_verify_blob(d.path(), "b.json", f, "mallory@example.com")), 0);
    let v = verify_blob_as(d.path(), "b.json", f, ALICE, stack().issuer());
    assert_code(&v, 0);
    // Wrong identity, wrong issuer: "no" (12).
    let wrong_id = verify_blob_as(d.path(), "b.json", f, "mallory@example.com", stack().issuer());
    assert_code(&wrong_id, 12);
    let wrong_iss = verify_blob_as(d.path(), "b.json", f, ALICE, "https://accounts.example.com");
    assert_code(&wrong_iss, 12);
}

#[test]
fn keyless_attest_blob_verifies_with_cosign3() {
    let d = tempfile::tempdir().unwrap();
    let f = blob(d.path());
    std::fs::write(d.path().join("pred.json"), br#"{"builder":{"id":"https://ci.example/b"}}"#).unwrap();
    let tok = stack().token(ALICE);
    let o = sigil_stack(
        d.path(),
        &[
            "attest-blob",
            "--identity-token",
            &tok,
            "--predicate",
            "pred.json",
            "--type",
            "custom",
            "--bundle",
            "a.json",
            f,
        ],
    );
    assert_code(&o, 0);
    let s = stack();
    let v = cosign3(
        d.path(),
        &[
            "verify-blob-attestation",
            "--certificate-identity",
            ALICE,
            "--certificate-oidc-issuer",
            s.issuer(),
            "--trusted-root",
            s.trusted_root(),
            "--type",
            "custom",
            "--bundle",
            "a.json",
            f,
        ],
    );
    assert_code(&v, 0);
}

#[test]
fn key_sign_blob_recorded_in_rekor_v2_with_a_timestamp_verifies_with_cosign3() {
    let d = tempfile::tempdir().unwrap();
    let f = blob(d.path());
    assert_code(&sigil(d.path(), &["generate-key-pair", "--output-key-prefix", "k"]), 0);
    let o = sigil_stack(d.path(), &["sign-blob", "--key", "k.key", "--bundle", "kb.json", f]);
    assert_code(&o, 0);
    assert_eq!(json_line(&o)["tlogVerified"], true);
    let s = stack();
    let v = cosign3(
        d.path(),
        &["verify-blob", "--key", "k.pub", "--trusted-root", s.trusted_root(), "--bundle", "kb.json", f],
    );
    assert_code(&v, 0);
    let v = sigil_stack(d.path(), &["verify-blob", "--key", "k.pub", "--bundle", "kb.json", f]);
    assert_code(&v, 0);
    // A token in the environment (a CI job that also signs keyless) does not stand in the way
    // of a key.
    let o = sigil_env(
        d.path(),
        &[
            "sign-blob",
            "--key",
            "k.key",
            "--signing-config",
            s.signing_config(),
            "--trusted-root",
            s.trusted_root(),
            "--bundle",
            "kt.json",
            f,
        ],
        &[("SIGIL_PASSWORD", PASSWORD), ("SIGSTORE_ID_TOKEN", "ignored-with-a-key")],
    );
    assert_code(&o, 0);
    // Ed25519 signs the message itself, while the log records a signature over a digest:
    // refused before any request, offline signing still works.
    assert_code(&sigil(d.path(), &["generate-key-pair", "--algorithm", "ed25519", "--output-key-prefix", "ed"]), 0);
    let o = sigil_stack(d.path(), &["sign-blob", "--key", "ed.key", "--bundle", "ed.json", f]);
    assert_code(&o, 2);
    assert!(stderr(&o).contains("Ed25519"), "{}", stderr(&o));
    // Signing the same file again with the same key is recorded again (the log refuses an
    // exact duplicate: the ECDSA signature is hedged when it goes to a log).
    assert_code(&sigil_stack(d.path(), &["sign-blob", "--key", "k.key", "--bundle", "kb2.json", f]), 0);
    let sig = |p: &str| -> Value {
        serde_json::from_slice::<Value>(&std::fs::read(d.path().join(p)).unwrap()).unwrap()["messageSignature"]
            ["signature"]
            .clone()
    };
    assert_ne!(sig("kb.json"), sig("kb2.json"));
}

#[test]
fn cosign3_keyless_and_key_blob_signatures_verify_with_sigil() {
    let d = tempfile::tempdir().unwrap();
    let f = blob(d.path());
    let s = stack();
    let tok = s.token(ALICE);
    let o = cosign3(
        d.path(),
        &[
            "sign-blob",
            "--yes",
            "--identity-token",
            &tok,
            "--signing-config",
            s.signing_config(),
            "--trusted-root",
            s.trusted_root(),
            "--bundle",
            "c.json",
            f,
        ],
    );
    assert_code(&o, 0);
    let v = verify_blob_as(d.path(), "c.json", f, ALICE, s.issuer());
    assert_code(&v, 0);
    assert_eq!(json_line(&v)["tlogVerified"], true);

    assert_code(&sigil(d.path(), &["generate-key-pair", "--output-key-prefix", "k"]), 0);
    let o = cosign3(
        d.path(),
        &[
            "sign-blob",
            "--yes",
            "--key",
            "k.key",
            "--signing-config",
            s.signing_config(),
            "--trusted-root",
            s.trusted_root(),
            "--bundle",
            "ck.json",
            f,
        ],
    );
    assert_code(&o, 0);
    assert_code(&sigil_stack(d.path(), &["verify-blob", "--key", "k.pub", "--bundle", "ck.json", f]), 0);
}

#[test]
fn keyless_image_signature_and_attestation_verify_with_cosign3() {
    let d = tempfile::tempdir().unwrap();
    let reg = Registry::start_kind(RegistryKind::Referrers);
    let store = reg.store("app/keyless");
    let digest = rt().block_on(push_image(&store, Some("v1"), "keyless", "amd64"));
    let image = format!("{}/app/keyless@{digest}", reg.host());
    let s = stack();
    let tok = s.token(ALICE);
    let o = sigil_stack(d.path(), &["sign", "--format", "bundle", HTTP, "--identity-token", &tok, &image]);
    assert_code(&o, 0);
    std::fs::write(d.path().join("pred.json"), br#"{"k":"v"}"#).unwrap();
    let o = sigil_stack(
        d.path(),
        &[
            "attest",
            "--format",
            "bundle",
            HTTP,
            "--identity-token",
            &tok,
            "--predicate",
            "pred.json",
            "--type",
            "custom",
            &image,
        ],
    );
    assert_code(&o, 0);

    let id =
        ["--certificate-identity", ALICE, "--certificate-oidc-issuer", s.issuer(), "--trusted-root", s.trusted_root()];
    let mut a = vec!["verify", HTTP];
    a.extend(id);
    a.push(&image);
    assert_code(&cosign3(d.path(), &a), 0);
    let mut a = vec!["verify-attestation", HTTP, "--type", "custom"];
    a.extend(id);
    a.push(&image);
    assert_code(&cosign3(d.path(), &a), 0);

    let v = sigil_stack(
        d.path(),
        &["verify", HTTP, "--certificate-identity", ALICE, "--certificate-oidc-issuer", s.issuer(), &image],
    );
    assert_code(&v, 0);
    let v = sigil_stack(
        d.path(),
        &[
            "verify",
            HTTP,
            "--certificate-identity",
            "mallory@example.com",
            "--certificate-oidc-issuer",
            s.issuer(),
            &image,
        ],
    );
    assert_code(&v, 12);
}

#[test]
fn cosign3_keyless_image_signature_verifies_with_sigil() {
    let d = tempfile::tempdir().unwrap();
    let reg = Registry::start_kind(RegistryKind::Referrers);
    let store = reg.store("app/c3");
    let digest = rt().block_on(push_image(&store, Some("v1"), "c3keyless", "amd64"));
    let image = format!("{}/app/c3@{digest}", reg.host());
    let s = stack();
    let tok = s.token(ALICE);
    let o = cosign3(
        d.path(),
        &[
            "sign",
            "--yes",
            HTTP,
            "--identity-token",
            &tok,
            "--signing-config",
            s.signing_config(),
            "--trusted-root",
            s.trusted_root(),
            &image,
        ],
    );
    assert_code(&o, 0);
    let v = sigil_stack(
        d.path(),
        &["verify", HTTP, "--certificate-identity", ALICE, "--certificate-oidc-issuer", s.issuer(), &image],
    );
    assert_code(&v, 0);
}

#[test]
fn expired_or_foreign_audience_tokens_are_refused_before_any_request() {
    let d = tempfile::tempdir().unwrap();
    let f = blob(d.path());
    let s = stack();
    // Every service of this configuration is a closed port: any request would fail as a
    // connection error, not as the token refusal asserted.
    let dead = "http://127.0.0.1:9";
    let config = std::fs::read_to_string(s.signing_config()).unwrap();
    let mut c: Value = serde_json::from_str(&config).unwrap();
    for k in ["caUrls", "rekorTlogUrls", "tsaUrls"] {
        c[k][0]["url"] = dead.into();
    }
    std::fs::write(d.path().join("dead.json"), c.to_string()).unwrap();
    for (token, want) in [
        (s.mint(&["--email", ALICE, "--ttl", "-30"]), "expired"),
        (s.mint(&["--email", ALICE, "--aud", "other"]), "audience"),
        ("not-a-token".to_owned(), "not an OIDC identity token"),
    ] {
        let o = sigil_env(
            d.path(),
            &[
                "sign-blob",
                "--identity-token",
                &token,
                "--signing-config",
                "dead.json",
                "--trusted-root",
                s.trusted_root(),
                "--bundle",
                "x.json",
                f,
            ],
            &[],
        );
        assert_code(&o, 1);
        assert!(stderr(&o).contains(want), "{want}: {}", stderr(&o));
        assert!(!stderr(&o).contains("127.0.0.1:9"), "a request was made: {}", stderr(&o));
        assert!(!d.path().join("x.json").exists());
    }
    // Keyless without the log is refused up front too.
    let tok = s.token(ALICE);
    let o = sigil_env(
        d.path(),
        &[
            "sign-blob",
            "--identity-token",
            &tok,
            "--tlog-upload=false",
            "--signing-config",
            "dead.json",
            "--trusted-root",
            s.trusted_root(),
            "--bundle",
            "x.json",
            f,
        ],
        &[],
    );
    assert_code(&o, 2);
    assert!(stderr(&o).contains("--tlog-upload=false is for key signing"), "{}", stderr(&o));
}

#[test]
fn evidence_removed_from_a_bundle_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let f = blob(d.path());
    let s = stack();
    let tok = s.token(ALICE);
    assert_code(&sigil_stack(d.path(), &["sign-blob", "--identity-token", &tok, "--bundle", "b.json", f]), 0);
    let b: Value = serde_json::from_slice(&std::fs::read(d.path().join("b.json")).unwrap()).unwrap();
    let verify = |name: &str, bundle: &Value| {
        std::fs::write(d.path().join(name), bundle.to_string()).unwrap();
        verify_blob_as(d.path(), name, f, ALICE, s.issuer())
    };
    let mut no_entry = b.clone();
    no_entry["verificationMaterial"].as_object_mut().unwrap().remove("tlogEntries");
    assert_code(&verify("no-entry.json", &no_entry), 12);
    // A v2 entry carries no time: without the timestamp the certificate (valid minutes) has no
    // verified time to be checked at.
    let mut no_time = b.clone();
    no_time["verificationMaterial"].as_object_mut().unwrap().remove("timestampVerificationData");
    let o = verify("no-time.json", &no_time);
    assert_code(&o, 12);
    assert!(stderr(&o).contains("timestamp"), "{}", stderr(&o));
    // The checkpoint re-signed by a key that is not the log's.
    let mut forged = b.clone();
    let cp = forged["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]["checkpoint"]["envelope"]
        .as_str()
        .unwrap()
        .to_owned();
    forged["verificationMaterial"]["tlogEntries"][0]["inclusionProof"]["checkpoint"]["envelope"] =
        resign_checkpoint(&cp).into();
    let o = verify("forged.json", &forged);
    assert_code(&o, 12);
    assert!(stderr(&o).contains("transparency log") || stderr(&o).contains("checkpoint"), "{}", stderr(&o));
}

/// The checkpoint's note body signed by another Ed25519 key under the same origin: a
/// checkpoint from another log.
fn resign_checkpoint(note: &str) -> String {
    use base64::engine::general_purpose::STANDARD as B64;
    use base64::Engine as _;
    use ed25519_dalek::Signer as _;
    use sha2::Digest as _;
    let (body, _) = note.split_once("\n\n").unwrap();
    let body = format!("{body}\n");
    let origin = body.lines().next().unwrap();
    let key = ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]);
    let mut h = sha2::Sha256::new();
    h.update(origin.as_bytes());
    h.update(b"\n\x01");
    h.update(key.verifying_key().as_bytes());
    let hint = &h.finalize()[..4];
    let mut sig = hint.to_vec();
    sig.extend(key.sign(body.as_bytes()).to_bytes());
    format!("{body}\n\u{2014} {origin} {}\n", B64.encode(sig))
}

/// A proxy in front of the real Rekor: requests go through unchanged; every answer's entry is
/// replaced by `replacement` (an entry the log holds for other content).
fn rewriting_proxy(rekor: &str, replacement: Value) -> String {
    let upstream = rekor.trim_start_matches("http://").to_owned();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming().flatten() {
            let up = upstream.clone();
            let replacement = replacement.clone();
            std::thread::spawn(move || {
                let _ = relay(conn, &up, &replacement);
            });
        }
    });
    format!("http://{addr}")
}

fn read_http(s: &mut TcpStream) -> std::io::Result<(String, Vec<u8>)> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if s.read(&mut byte)? == 0 {
            break;
        }
        buf.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&buf).into_owned();
    let len = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse::<usize>().unwrap_or(0))
        })
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    s.read_exact(&mut body)?;
    Ok((head, body))
}

fn relay(mut client: TcpStream, upstream: &str, replacement: &Value) -> std::io::Result<()> {
    let (head, body) = read_http(&mut client)?;
    // HTTP/1.0 upstream: no chunked answer, and the connection closes after it.
    let head = head.replacen("HTTP/1.1", "HTTP/1.0", 1);
    let mut up = TcpStream::connect(upstream)?;
    up.write_all(head.as_bytes())?;
    up.write_all(&body)?;
    let mut answer = Vec::new();
    up.read_to_end(&mut answer)?;
    let split = answer.windows(4).position(|w| w == b"\r\n\r\n").map_or(answer.len(), |i| i + 4);
    let status = String::from_utf8_lossy(&answer[..split])
        .lines()
        .next()
        .unwrap_or_default()
        .replacen("HTTP/1.0", "HTTP/1.1", 1);
    let mut entry: Value = serde_json::from_slice(&answer[split..]).unwrap_or(Value::Null);
    if entry.is_object() {
        entry["canonicalizedBody"] = replacement["canonicalizedBody"].clone();
    }
    let out = serde_json::to_vec(&entry).unwrap();
    write!(
        client,
        "{status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        out.len()
    )?;
    client.write_all(&out)?;
    Ok(())
}

#[test]
fn a_rekor_answering_for_other_content_fails_the_signing_and_nothing_is_written() {
    let d = tempfile::tempdir().unwrap();
    let f = blob(d.path());
    let s = stack();
    // An entry the log really holds, for another artifact.
    std::fs::write(d.path().join("other.txt"), b"other\n").unwrap();
    assert_code(&sigil(d.path(), &["generate-key-pair", "--output-key-prefix", "k"]), 0);
    assert_code(&sigil_stack(d.path(), &["sign-blob", "--key", "k.key", "--bundle", "other.json", "other.txt"]), 0);
    let other: Value = serde_json::from_slice(&std::fs::read(d.path().join("other.json")).unwrap()).unwrap();
    let proxy = rewriting_proxy(s.get("SIGSTACK_REKOR_URL"), other["verificationMaterial"]["tlogEntries"][0].clone());
    let mut c: Value = serde_json::from_str(&std::fs::read_to_string(s.signing_config()).unwrap()).unwrap();
    c["rekorTlogUrls"][0]["url"] = proxy.into();
    std::fs::write(d.path().join("proxied.json"), c.to_string()).unwrap();

    let o = sigil_env(
        d.path(),
        &[
            "sign-blob",
            "--key",
            "k.key",
            "--signing-config",
            "proxied.json",
            "--trusted-root",
            s.trusted_root(),
            "--bundle",
            "b.json",
            f,
        ],
        &[("SIGIL_PASSWORD", PASSWORD)],
    );
    assert_code(&o, 1);
    assert!(stderr(&o).contains("other content"), "{}", stderr(&o));
    assert!(!d.path().join("b.json").exists(), "nothing may be written");

    // The same for an image: no signature reaches the registry.
    let reg = Registry::start_kind(RegistryKind::Referrers);
    let store = reg.store("app/proxied");
    let digest = rt().block_on(push_image(&store, Some("v1"), "proxied", "amd64"));
    let image = format!("{}/app/proxied@{digest}", reg.host());
    let tok = s.token(ALICE);
    let o = sigil_env(
        d.path(),
        &[
            "sign",
            "--format",
            "bundle",
            HTTP,
            "--identity-token",
            &tok,
            "--signing-config",
            "proxied.json",
            "--trusted-root",
            s.trusted_root(),
            &image,
        ],
        &[],
    );
    assert_code(&o, 1);
    assert!(stderr(&o).contains("other content"), "{}", stderr(&o));
    let tree = sigil(d.path(), &["tree", HTTP, &image]);
    assert!(!stdout(&tree).contains("sign/v1") && !stdout(&tree).contains("bundle"), "{}", stdout(&tree));
}

/// sigstore-python's client trust configuration for the stack: its trusted root (each
/// certificate authority's subject given a commonName, which sigstore-python requires and
/// `cosign trusted-root create` leaves out) and signing configuration.
fn python_trust_config(d: &Path) -> std::path::PathBuf {
    let s = stack();
    let mut root: Value = serde_json::from_str(&std::fs::read_to_string(s.trusted_root()).unwrap()).unwrap();
    for list in ["certificateAuthorities", "timestampAuthorities"] {
        for ca in root[list].as_array_mut().unwrap() {
            if ca["subject"]["commonName"].is_null() {
                ca["subject"]["commonName"] = ca["subject"]["organization"].clone();
            }
        }
    }
    let config: Value = serde_json::from_str(&std::fs::read_to_string(s.signing_config()).unwrap()).unwrap();
    let tc = serde_json::json!({
        "mediaType": "application/vnd.dev.sigstore.clienttrustconfig.v0.1+json",
        "trustedRoot": root,
        "signingConfig": config,
    });
    let p = d.join("client-trust-config.json");
    std::fs::write(&p, tc.to_string()).unwrap();
    p
}

#[test]
fn sigstore_python_accepts_sigil_keyless_blob_bundles() {
    let d = tempfile::tempdir().unwrap();
    let f = blob(d.path());
    std::fs::write(d.path().join("pred.json"), br#"{"k":"v"}"#).unwrap();
    let tok = stack().token(ALICE);
    assert_code(&sigil_stack(d.path(), &["sign-blob", "--identity-token", &tok, "--bundle", "s.json", f]), 0);
    assert_code(
        &sigil_stack(
            d.path(),
            &["attest-blob", "--identity-token", &tok, "--predicate", "pred.json", "--bundle", "a.json", f],
        ),
        0,
    );
    let tc = python_trust_config(d.path());
    let client = Path::new(env!("CARGO_MANIFEST_DIR")).join(".tools/py/bin/sigstore");
    assert!(client.exists(), "{} is missing: run scripts/setup.sh", client.display());
    for (bundle, identity, want) in
        [("s.json", ALICE, true), ("a.json", ALICE, true), ("s.json", "mallory@example.com", false)]
    {
        let o = std::process::Command::new(&client)
            .current_dir(d.path())
            .arg("--trust-config")
            .arg(&tc)
            .args([
                "verify",
                "identity",
                "--cert-identity",
                identity,
                "--cert-oidc-issuer",
                stack().issuer(),
                "--bundle",
                bundle,
                f,
            ])
            .env("HOME", d.path())
            .output()
            .unwrap();
        assert_eq!(o.status.success(), want, "{bundle} as {identity}: {}", String::from_utf8_lossy(&o.stderr));
    }
}

#[test]
fn key_verification_requires_log_evidence_unless_told_otherwise() {
    let d = tempfile::tempdir().unwrap();
    let s = stack();
    assert_code(&sigil(d.path(), &["generate-key-pair", "--output-key-prefix", "k"]), 0);
    let reg = Registry::start_kind(RegistryKind::Referrers);
    let store = reg.store("app/evidence");
    let logged = rt().block_on(push_image(&store, Some("v1"), "logged", "amd64"));
    let offline = rt().block_on(push_image(&store, Some("v2"), "offline", "amd64"));
    let by_cosign = rt().block_on(push_image(&store, Some("v3"), "bycosign", "amd64"));
    let image = |d: &sigil::digest::Digest| format!("{}/app/evidence@{d}", reg.host());
    let (logged, offline, by_cosign) = (image(&logged), image(&offline), image(&by_cosign));

    assert_code(&sigil_stack(d.path(), &["sign", "--format", "bundle", HTTP, "--key", "k.key", &logged]), 0);
    std::fs::write(d.path().join("pred.json"), br#"{"k":"v"}"#).unwrap();
    assert_code(
        &sigil_stack(
            d.path(),
            &["attest", "--format", "bundle", HTTP, "--key", "k.key", "--predicate", "pred.json", &logged],
        ),
        0,
    );
    let o = sigil_env(
        d.path(),
        &["sign", "--format", "bundle", "--tlog-upload=false", HTTP, "--key", "k.key", &offline],
        &[("SIGIL_PASSWORD", PASSWORD)],
    );
    assert_code(&o, 0);
    let o = cosign3(
        d.path(),
        &[
            "sign",
            "--yes",
            HTTP,
            "--key",
            "k.key",
            "--signing-config",
            s.signing_config(),
            "--trusted-root",
            s.trusted_root(),
            &by_cosign,
        ],
    );
    assert_code(&o, 0);

    // Recorded in the log (by sigil or cosign 3.1.1): verified with the log entry and timestamp.
    for img in [&logged, &by_cosign] {
        let v = sigil_stack(d.path(), &["verify", HTTP, "--key", "k.pub", img]);
        assert_code(&v, 0);
        assert!(stderr(&v).contains("transparency-log entry verified"), "{}", stderr(&v));
    }
    assert_code(&sigil_stack(d.path(), &["verify-attestation", HTTP, "--key", "k.pub", &logged]), 0);
    // cosign 3.1.1 verifies sigil's key signature with its log entry too (no --insecure flag).
    let v = cosign3(d.path(), &["verify", HTTP, "--key", "k.pub", "--trusted-root", s.trusted_root(), &logged]);
    assert_code(&v, 0);

    // Not recorded: refused by default (12), naming the way out; accepted with the flag.
    let v = sigil_stack(d.path(), &["verify", HTTP, "--key", "k.pub", &offline]);
    assert_code(&v, 12);
    assert!(stderr(&v).contains("--insecure-ignore-tlog"), "{}", stderr(&v));
    let v = sigil_env(d.path(), &["verify", HTTP, "--key", "k.pub", "--insecure-ignore-tlog", &offline], &[]);
    assert_code(&v, 0);
    assert!(stderr(&v).contains("warning: --insecure-ignore-tlog"), "{}", stderr(&v));
}

/// A stand-in for GitHub Actions' token service on loopback: answers `{"value": TOKEN}` to a
/// request carrying the bearer and `audience=sigstore`, and records what it was asked.
fn github_token_service(token: String, bearer: &'static str) -> (String, std::sync::mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            let Ok((head, _)) = read_http(&mut conn) else { continue };
            let _ = tx.send(head.clone());
            let authorised = head.lines().any(|l| l.eq_ignore_ascii_case(&format!("authorization: bearer {bearer}")));
            let (status, body) = if authorised && head.contains("audience=sigstore") {
                ("200 OK", serde_json::json!({"count": 1, "value": token}).to_string())
            } else {
                ("401 Unauthorized", "{}".to_owned())
            };
            let _ = write!(conn, "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
        }
    });
    (format!("http://{addr}/idtoken?api-version=2.0"), rx)
}

#[test]
fn github_actions_ambient_token_signs_keyless() {
    let d = tempfile::tempdir().unwrap();
    let f = blob(d.path());
    let s = stack();
    let (url, asked) = github_token_service(s.token("ci@example.com"), "request-secret");
    let o = sigil_env(
        d.path(),
        &[
            "sign-blob",
            "--signing-config",
            s.signing_config(),
            "--trusted-root",
            s.trusted_root(),
            "--bundle",
            "b.json",
            f,
        ],
        &[("ACTIONS_ID_TOKEN_REQUEST_URL", &url), ("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "request-secret")],
    );
    assert_code(&o, 0);
    assert_eq!(json_line(&o)["identity"], "ci@example.com");
    let request = asked.recv().unwrap();
    assert!(request.starts_with("GET /idtoken?api-version=2.0&audience=sigstore "), "{request}");
    assert!(!stderr(&o).contains("request-secret"), "the request token must never be printed");

    // Without any token source: a usage error naming them, nothing asked of anyone.
    let o = sigil_env(
        d.path(),
        &[
            "sign-blob",
            "--signing-config",
            s.signing_config(),
            "--trusted-root",
            s.trusted_root(),
            "--bundle",
            "c.json",
            f,
        ],
        &[],
    );
    assert_code(&o, 2);
    assert!(stderr(&o).contains("SIGSTORE_ID_TOKEN") && stderr(&o).contains("id-token: write"), "{}", stderr(&o));
}

#[test]
fn signing_configuration_comes_through_tuf_like_the_trusted_root() {
    let d = tempfile::tempdir().unwrap();
    let f = blob(d.path());
    let s = stack();
    let (_server, url, pinned) =
        tuf_double(&d.path().join("tuf"), Path::new(s.trusted_root()), Some(Path::new(s.signing_config())));
    let cache = d.path().join("cache");
    let env = [
        ("SIGIL_TUF_CACHE", cache.to_str().unwrap()),
        ("SIGIL_TUF_URL", url.as_str()),
        ("SIGIL_TUF_ROOT", pinned.to_str().unwrap()),
    ];
    // Before an update: no signing configuration for this repository (never public-good's).
    let tok = s.token(ALICE);
    let sign =
        |bundle: &str| sigil_env(d.path(), &["sign-blob", "--identity-token", &tok, "--bundle", bundle, f], &env);
    let o = sign("early.json");
    assert_code(&o, 1);
    assert!(stderr(&o).contains("trusted-root update"), "{}", stderr(&o));

    let u = sigil_env(d.path(), &["trusted-root", "update"], &env);
    assert_code(&u, 0);
    assert!(stderr(&u).contains("signing configuration verified and cached"), "{}", stderr(&u));
    // Then signing needs no --signing-config or --trusted-root: both come from the TUF cache.
    let o = sign("b.json");
    assert_code(&o, 0);
    assert!(stderr(&o).contains("signing configuration from the TUF cache"), "{}", stderr(&o));
    let v = sigil_env(
        d.path(),
        &[
            "verify-blob",
            "--certificate-identity",
            ALICE,
            "--certificate-oidc-issuer",
            s.issuer(),
            "--bundle",
            "b.json",
            f,
        ],
        &env,
    );
    assert_code(&v, 0);
}

#[test]
fn offline_key_blob_bundle_verifies_only_when_the_log_is_waived() {
    let d = tempfile::tempdir().unwrap();
    let f = blob(d.path());
    let s = stack();
    assert_code(&sigil(d.path(), &["generate-key-pair", "--output-key-prefix", "k"]), 0);
    // `sigil` (tests/common) adds --tlog-upload=false to a key signing that names no services.
    let o = sigil(d.path(), &["sign-blob", "--key", "k.key", "--bundle", "off.json", f]);
    assert_code(&o, 0);
    assert!(stderr(&o).contains("--tlog-upload=false"), "{}", stderr(&o));
    let v = sigil_stack(d.path(), &["verify-blob", "--key", "k.pub", "--bundle", "off.json", f]);
    assert_code(&v, 12);
    let v =
        sigil_stack(d.path(), &["verify-blob", "--key", "k.pub", "--insecure-ignore-tlog", "--bundle", "off.json", f]);
    assert_code(&v, 0);
    assert!(stderr(&v).contains("warning: --insecure-ignore-tlog"), "{}", stderr(&v));
    // A tampered file is still refused with the waiver.
    std::fs::write(d.path().join("other.txt"), b"tampered\n").unwrap();
    let v = sigil_stack(
        d.path(),
        &["verify-blob", "--key", "k.pub", "--insecure-ignore-tlog", "--bundle", "off.json", "other.txt"],
    );
    assert_code(&v, 12);
    // An offline attestation bundle (DSSE) too: the statement must be about the file.
    std::fs::write(d.path().join("pred.json"), br#"{"k":"v"}"#).unwrap();
    assert_code(
        &sigil(d.path(), &["attest-blob", "--key", "k.key", "--predicate", "pred.json", "--bundle", "att.json", f]),
        0,
    );
    let v =
        sigil_stack(d.path(), &["verify-blob", "--key", "k.pub", "--insecure-ignore-tlog", "--bundle", "att.json", f]);
    assert_code(&v, 0);
    let v = sigil_stack(
        d.path(),
        &["verify-blob", "--key", "k.pub", "--insecure-ignore-tlog", "--bundle", "att.json", "other.txt"],
    );
    assert_code(&v, 12);
    // cosign 3.1.1 reads the same bundle the same way.
    let c = cosign3(
        d.path(),
        &[
            "verify-blob",
            "--key",
            "k.pub",
            "--insecure-ignore-tlog",
            "--trusted-root",
            s.trusted_root(),
            "--bundle",
            "off.json",
            f,
        ],
    );
    assert_code(&c, 0);
}

/// cosign 2.5 against the stack: it reads trust from TUF or these variables (its
/// `--trusted-root` does not cover Rekor keys).
fn cosign2_stack(d: &Path, args: &[&str]) -> std::process::Output {
    let s = stack();
    cosign_env(
        d,
        args,
        &[
            ("SIGSTORE_REKOR_PUBLIC_KEY", s.get("SIGSTACK_REKOR_V1_PUBLIC_KEY")),
            ("SIGSTORE_ROOT_FILE", s.get("SIGSTACK_FULCIO_CHAIN")),
            ("SIGSTORE_CT_LOG_PUBLIC_KEY_FILE", s.get("SIGSTACK_CT_PUBLIC_KEY")),
        ],
    )
}

/// sigil with the stack's Rekor v1 signing configuration.
fn sigil_stack_v1(d: &Path, args: &[&str]) -> std::process::Output {
    let s = stack();
    let mut a: Vec<&str> = args.to_vec();
    a.extend(["--signing-config", s.get("SIGSTACK_SIGNING_CONFIG_V1"), "--trusted-root", s.trusted_root()]);
    sigil_env(d, &a, &[("SIGIL_PASSWORD", PASSWORD)])
}

#[test]
fn legacy_signatures_and_attestations_with_rekor_v1_evidence_verify_with_cosign_2_and_3() {
    let d = tempfile::tempdir().unwrap();
    let s = stack();
    assert_code(&sigil(d.path(), &["generate-key-pair", "--output-key-prefix", "k"]), 0);
    let reg = Registry::start_kind(RegistryKind::Distribution);
    let store = reg.store("app/legacy");
    let keyless = rt().block_on(push_image(&store, Some("v1"), "legacy-keyless", "amd64"));
    let keyed = rt().block_on(push_image(&store, Some("v2"), "legacy-key", "amd64"));
    let image = |d: &sigil::digest::Digest| format!("{}/app/legacy@{d}", reg.host());
    let (keyless, keyed) = (image(&keyless), image(&keyed));

    let tok = s.token(ALICE);
    assert_code(
        &sigil_stack_v1(d.path(), &["sign", "--format", "legacy", HTTP, "--identity-token", &tok, &keyless]),
        0,
    );
    assert_code(&sigil_stack_v1(d.path(), &["sign", "--format", "legacy", HTTP, "--key", "k.key", &keyed]), 0);

    let id = ["--certificate-identity", ALICE, "--certificate-oidc-issuer", s.issuer()];
    // cosign 3.1.1 and cosign 2.5 read cosign 2's annotations (certificate, chain, Rekor v1
    // entry with its SET, RFC 3161 timestamp); no --insecure flag anywhere.
    let mut a = vec!["verify", HTTP, "--trusted-root", s.trusted_root()];
    a.extend(id);
    a.push(&keyless);
    assert_code(&cosign3(d.path(), &a), 0);
    let mut a = vec!["verify", HTTP];
    a.extend(id);
    a.push(&keyless);
    assert_code(&cosign2_stack(d.path(), &a), 0);
    assert_code(&cosign2_stack(d.path(), &["verify", HTTP, "--key", "k.pub", &keyed]), 0);
    assert_code(&cosign3(d.path(), &["verify", HTTP, "--key", "k.pub", "--trusted-root", s.trusted_root(), &keyed]), 0);
    // And sigil: by identity, and by key with the log entry checked.
    let v = sigil_stack(
        d.path(),
        &[
            "verify",
            HTTP,
            "--format",
            "legacy",
            "--certificate-identity",
            ALICE,
            "--certificate-oidc-issuer",
            s.issuer(),
            &keyless,
        ],
    );
    assert_code(&v, 0);
    let v = sigil_stack(
        d.path(),
        &[
            "verify",
            HTTP,
            "--format",
            "legacy",
            "--certificate-identity",
            "mallory@example.com",
            "--certificate-oidc-issuer",
            s.issuer(),
            &keyless,
        ],
    );
    assert_code(&v, 12);
    assert_code(&sigil_stack(d.path(), &["verify", HTTP, "--key", "k.pub", &keyed]), 0);

    // A legacy attestation, keyless, with its `dsse` Rekor v1 entry: both cosigns verify it.
    std::fs::write(d.path().join("pred.json"), br#"{"k":"v"}"#).unwrap();
    let o = sigil_stack_v1(
        d.path(),
        &[
            "attest",
            "--format",
            "legacy",
            HTTP,
            "--identity-token",
            &tok,
            "--predicate",
            "pred.json",
            "--type",
            "custom",
            &keyless,
        ],
    );
    assert_code(&o, 0);
    let mut a = vec!["verify-attestation", HTTP, "--type", "custom", "--trusted-root", s.trusted_root()];
    a.extend(id);
    a.push(&keyless);
    assert_code(&cosign3(d.path(), &a), 0);
    let mut a = vec!["verify-attestation", HTTP, "--type", "custom"];
    a.extend(id);
    a.push(&keyless);
    assert_code(&cosign2_stack(d.path(), &a), 0);
    let v = sigil_stack(
        d.path(),
        &[
            "verify-attestation",
            HTTP,
            "--format",
            "legacy",
            "--certificate-identity",
            ALICE,
            "--certificate-oidc-issuer",
            s.issuer(),
            &keyless,
        ],
    );
    assert_code(&v, 0);

    // A legacy signature needs a v1 log: with the v2-only configuration, refused up front.
    let o = sigil_stack(d.path(), &["sign", "--format", "legacy", HTTP, "--key", "k.key", &keyed]);
    assert_code(&o, 1);
    assert!(stderr(&o).contains("Rekor v1"), "{}", stderr(&o));
}

#[test]
fn cosign3_legacy_keyless_signature_with_rekor_v1_verifies_with_sigil() {
    let d = tempfile::tempdir().unwrap();
    let s = stack();
    let reg = Registry::start_kind(RegistryKind::Distribution);
    let store = reg.store("app/c3legacy");
    let digest = rt().block_on(push_image(&store, Some("v1"), "c3legacy", "amd64"));
    let image = format!("{}/app/c3legacy@{digest}", reg.host());
    let tok = s.token(ALICE);
    let o = cosign3(
        d.path(),
        &[
            "sign",
            "--yes",
            HTTP,
            "--new-bundle-format=false",
            "--use-signing-config=false",
            "--identity-token",
            &tok,
            "--fulcio-url",
            s.get("SIGSTACK_FULCIO_URL"),
            "--rekor-url",
            s.get("SIGSTACK_REKOR_V1_URL"),
            "--trusted-root",
            s.trusted_root(),
            &image,
        ],
    );
    assert_code(&o, 0);
    let v = sigil_stack(
        d.path(),
        &["verify", HTTP, "--certificate-identity", ALICE, "--certificate-oidc-issuer", s.issuer(), &image],
    );
    assert_code(&v, 0);
    assert_eq!(json_line(&v)["formats"], serde_json::json!(["legacy"]));
}

#[test]
fn rekor_v1_blob_bundles_verify_with_cosign3_and_an_existing_entry_is_reused() {
    let d = tempfile::tempdir().unwrap();
    let f = blob(d.path());
    let s = stack();
    let tok = s.token(ALICE);
    assert_code(&sigil_stack_v1(d.path(), &["sign-blob", "--identity-token", &tok, "--bundle", "b.json", f]), 0);
    let b: Value = serde_json::from_slice(&std::fs::read(d.path().join("b.json")).unwrap()).unwrap();
    let entry = &b["verificationMaterial"]["tlogEntries"][0];
    assert_eq!(entry["kindVersion"], serde_json::json!({"kind": "hashedrekord", "version": "0.0.1"}));
    assert!(entry["inclusionPromise"]["signedEntryTimestamp"].is_string());
    assert_code(&cosign3_verify_blob(d.path(), "b.json", f, ALICE), 0);

    // An envelope goes to v1 as a `dsse` entry.
    std::fs::write(d.path().join("pred.json"), br#"{"k":"v"}"#).unwrap();
    assert_code(
        &sigil_stack_v1(
            d.path(),
            &["attest-blob", "--identity-token", &tok, "--predicate", "pred.json", "--bundle", "a.json", f],
        ),
        0,
    );
    let a: Value = serde_json::from_slice(&std::fs::read(d.path().join("a.json")).unwrap()).unwrap();
    assert_eq!(a["verificationMaterial"]["tlogEntries"][0]["kindVersion"]["kind"], "dsse");
    let v = verify_blob_as(d.path(), "a.json", f, ALICE, s.issuer());
    assert_code(&v, 0);

    // The same entry proposed twice: Rekor v1 answers 409 the second time, and the entry the
    // log already holds is fetched from its Location, checked against the proposal and used.
    use sigil::keys::{KeyAlgorithm, PrivateKey};
    use sigil::rekor::{ApiVersion, Proposal, Rekor, TransparencyLog, Verifier};
    let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256);
    let digest = [9u8; 32];
    let public = key.public_key();
    let proposal = Proposal::HashedRekord {
        digest,
        signature: key.sign_sha256(&digest, sigil::keys::Nonce::Deterministic).unwrap(),
        verifier: Verifier::PublicKey { der: public.to_der().unwrap(), algorithm: public.algorithm() },
    };
    let service = sigil::http::Service::new("Rekor", std::time::Duration::from_secs(30)).unwrap();
    let rekor = Rekor::new(service, s.get("SIGSTACK_REKOR_V1_URL"), ApiVersion::V1);
    let first = rt().block_on(rekor.record(&proposal)).unwrap();
    let again = rt().block_on(rekor.record(&proposal)).unwrap();
    assert_eq!(first["logIndex"], again["logIndex"]);
    assert_eq!(first["canonicalizedBody"], again["canonicalizedBody"]);
}
