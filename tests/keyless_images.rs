//! Keyless image signatures stored the cosign way (certificate and Rekor bundle
//! annotations), verified with real production material: the sigstore-conformance
//! `happy-path-v0.1` bundle (a Fulcio certificate, its signature over `a.txt`, and the public
//! Rekor entry with its SET) is written into a signature layer exactly as cosign writes one.
//!
//! Its signed payload is `a.txt`, not a simple-signing document, so the best outcome is a
//! rejection *after* every keyless check passed ("signed payload is invalid"); each check is
//! then broken on purpose to see it named. A keyless signature over a real simple-signing
//! payload needs Fulcio and Rekor, which cannot run here.

mod common;

use std::path::Path;

use base64::Engine as _;
use common::*;
use serde_json::Value;
use sigil::attachments::{signature_manifest, SIGNATURE_ANNOTATION, SIMPLE_SIGNING};
use sigil::oci::manifest::{Descriptor, OCI_MANIFEST};
use sigil::oci::{ManifestRef, Store};

const IDENTITY: &str = "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main";
const ISSUER: &str = "https://token.actions.githubusercontent.com";

/// cosign's certificate (PEM) and Rekor bundle annotation values for a Sigstore bundle's
/// verification material (leaf certificate, first tlog entry).
fn cosign_material(b: &Value) -> (String, Value) {
    let b64 = base64::engine::general_purpose::STANDARD;
    let vm = &b["verificationMaterial"];
    let cert =
        if vm["certificate"].is_object() { &vm["certificate"] } else { &vm["x509CertificateChain"]["certificates"][0] };
    let leaf = b64.decode(cert["rawBytes"].as_str().unwrap()).unwrap();
    let pem = format!(
        "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
        b64.encode(leaf).as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap()).collect::<Vec<_>>().join("\n")
    );
    let t = &vm["tlogEntries"][0];
    let rekor = serde_json::json!({
        "SignedEntryTimestamp": t["inclusionPromise"]["signedEntryTimestamp"],
        "Payload": {
            "body": t["canonicalizedBody"],
            "integratedTime": t["integratedTime"].as_str().unwrap().parse::<i64>().unwrap(),
            "logIndex": t["logIndex"].as_str().unwrap().parse::<i64>().unwrap(),
            "logID": hex::encode(b64.decode(t["logId"]["keyId"].as_str().unwrap()).unwrap()),
        }
    });
    (pem, rekor)
}

/// cosign's layer annotations for the conformance bundle, with `edit` applied.
fn annotations(
    vectors: &Path,
    edit: impl FnOnce(&mut serde_json::Map<String, Value>),
) -> std::collections::BTreeMap<String, String> {
    let b: Value = serde_json::from_slice(
        &std::fs::read(vectors.join("sigstore-conformance/bundle-verify/happy-path-v0.1/bundle.sigstore.json"))
            .unwrap(),
    )
    .unwrap();
    let (pem, mut rekor) = cosign_material(&b);
    let mut m = serde_json::Map::new();
    m.insert(SIGNATURE_ANNOTATION.into(), b["messageSignature"]["signature"].clone());
    m.insert("dev.sigstore.cosign/certificate".into(), Value::String(pem));
    edit(&mut m);
    if !m.contains_key("skip-bundle") {
        if let Some(Value::String(set)) = m.remove("set-override") {
            rekor["SignedEntryTimestamp"] = Value::String(set);
        }
        m.insert("dev.sigstore.cosign/bundle".into(), Value::String(rekor.to_string()));
    }
    m.remove("skip-bundle");
    m.into_iter().map(|(k, v)| (k, v.as_str().unwrap().to_string())).collect()
}

fn attach<S: Store>(
    store: &S,
    digest: &sigil::digest::Digest,
    payload: &[u8],
    ann: std::collections::BTreeMap<String, String>,
) {
    rt().block_on(async {
        store.put_blob(payload.to_vec()).await.unwrap();
        let mut layer = Descriptor::of(SIMPLE_SIGNING, payload);
        layer.annotations = Some(ann);
        let (manifest, config) = signature_manifest(vec![layer]);
        store.put_blob(config).await.unwrap();
        store
            .put_manifest(&ManifestRef::Tag(format!("{}.sig", digest.tag_stem())), OCI_MANIFEST, manifest)
            .await
            .unwrap();
    });
}

#[test]
fn keyless_image_signatures_with_production_material() {
    let vectors = vectors();
    let reg = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let root = vectors.join("trust/public-good.trusted_root.json");
    let root = root.to_str().unwrap();
    let a_txt = std::fs::read(vectors.join("sigstore-conformance/bundle-verify/a.txt")).unwrap();
    let store = reg.store("keyless/app");
    let verify = |image: &str, identity: &str| {
        sigil(
            d,
            &[
                "verify",
                "--allow-http-registry",
                "--trusted-root",
                root,
                "--certificate-identity",
                identity,
                "--certificate-oidc-issuer",
                ISSUER,
                image,
            ],
        )
    };
    let push = |seed: &str, payload: &[u8], ann| {
        let digest = rt().block_on(push_image(&store, Some(seed), seed, "amd64"));
        attach(&store, &digest, payload, ann);
        format!("{}/keyless/app@{digest}", reg.host())
    };

    // Every keyless check passes; only the payload (a.txt) is not a simple-signing document.
    let image = push("good", &a_txt, annotations(&vectors, |_| {}));
    let out = verify(&image, IDENTITY);
    assert_code(&out, 12);
    assert!(stderr(&out).contains("signed payload is invalid"), "{}", stderr(&out));

    // Another identity: the certificate is refused, and the check is named.
    let out = verify(&image, "https://github.com/someone/else/.github/workflows/x.yml@refs/heads/main");
    assert_code(&out, 12);
    assert!(stderr(&out).contains("certificate identity"), "{}", stderr(&out));

    // A forged SET.
    let image = push(
        "set",
        &a_txt,
        annotations(&vectors, |m| {
            m.insert(
                "set-override".into(),
                Value::String(
                    "MEUCIQD/////////////////////////////////////////AiAA//////////////////////////////////////8="
                        .into(),
                ),
            );
        }),
    );
    let out = verify(&image, IDENTITY);
    assert_code(&out, 12);
    assert!(stderr(&out).contains("transparency log"), "{}", stderr(&out));

    // A payload other than the one logged and signed.
    let image = push("payload", b"something else", annotations(&vectors, |_| {}));
    let out = verify(&image, IDENTITY);
    assert_code(&out, 12);
    assert!(!stderr(&out).contains("signed payload is invalid"), "{}", stderr(&out));

    // No Rekor evidence: refused, not trusted on the certificate alone.
    let image = push(
        "norekor",
        &a_txt,
        annotations(&vectors, |m| {
            m.insert("skip-bundle".into(), Value::String(String::new()));
        }),
    );
    let out = verify(&image, IDENTITY);
    assert_code(&out, 12);
    assert!(stderr(&out).contains("no Rekor bundle annotation"), "{}", stderr(&out));

    // An RFC 3161 timestamp annotation that does not verify (a real TSA token, but over another
    // signature, from the managed-key case) is ignored, as the reference clients do: it is no
    // time source, and the SET's integrated time still is, so every keyless check passes and
    // only the payload (a.txt) is refused, as for the good image above.
    // see: issue 8 §9
    let tsa_bundle: Value = serde_json::from_slice(
        &std::fs::read(vectors.join("sigstore-conformance/bundle-verify/managed-key-happy-path/bundle.sigstore.json"))
            .unwrap(),
    )
    .unwrap();
    let token = tsa_bundle["verificationMaterial"]["timestampVerificationData"]["rfc3161Timestamps"][0]
        ["signedTimestamp"]
        .clone();
    let image = push(
        "tsa",
        &a_txt,
        annotations(&vectors, |m| {
            m.insert(
                "dev.sigstore.cosign/rfc3161timestamp".into(),
                Value::String(serde_json::json!({ "SignedRFC3161Timestamp": token }).to_string()),
            );
        }),
    );
    let out = verify(&image, IDENTITY);
    assert_code(&out, 12);
    assert!(!stderr(&out).contains("rejected: timestamp"), "{}", stderr(&out));
    assert!(stderr(&out).contains("signed payload is invalid"), "{}", stderr(&out));

    // Usage: key and identity together, or identity without issuer.
    assert_code(
        &sigil(
            d,
            &[
                "verify",
                "--key",
                "x.pub",
                "--certificate-identity",
                IDENTITY,
                "--certificate-oidc-issuer",
                ISSUER,
                &image,
            ],
        ),
        2,
    );
    assert_code(&sigil(d, &["verify", "--certificate-identity", IDENTITY, &image]), 2);
}

/// Whatever trusted root a keyless check uses, stderr names it with its sha256, and JSON output
/// carries the same as `trustRoot`: a deploy gate's replaced trust anchors are visible.
#[test]
fn trusted_root_in_use_is_always_named() {
    // see: issue 8 §5
    let vectors = vectors();
    let reg = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let bytes = std::fs::read(vectors.join("trust/public-good.trusted_root.json")).unwrap();
    let root = d.join("gate-root.json");
    std::fs::write(&root, &bytes).unwrap();
    let root = root.to_str().unwrap();
    let sha256 = sigil::digest::Digest::sha256(&bytes).to_string();
    let a_txt = std::fs::read(vectors.join("sigstore-conformance/bundle-verify/a.txt")).unwrap();
    let store = reg.store("keyless/named");
    let digest = rt().block_on(push_image(&store, Some("v1"), "named", "amd64"));
    attach(&store, &digest, &a_txt, annotations(&vectors, |_| {}));
    let image = format!("{}/keyless/named@{digest}", reg.host());
    let keyless = ["--allow-http-registry", "--certificate-identity", IDENTITY, "--certificate-oidc-issuer", ISSUER];
    let named = |out: &std::process::Output| {
        let err = stderr(out);
        assert!(err.contains(&format!("trusted root from the file {root} ({sha256})")), "{err}");
        assert_eq!(err.matches("trusted root").count(), 1, "said once: {err}");
    };
    for (cmd, code) in [("verify", 12), ("verify-attestation", 10), ("inspect", 0)] {
        // From the flag and from SIGIL_TRUSTED_ROOT alike.
        let mut args = vec![cmd, "--trusted-root", root];
        args.extend(keyless);
        args.push(&image);
        let out = sigil(d, &args);
        assert_code(&out, code);
        named(&out);
        let mut args = vec![cmd];
        args.extend(keyless);
        args.push(&image);
        let out = sigil_env(d, &args, &[("SIGIL_PASSWORD", PASSWORD), ("SIGIL_TRUSTED_ROOT", root)]);
        assert_code(&out, code);
        named(&out);
    }
    let mut args = vec!["inspect", "-o", "json", "--trusted-root", root];
    args.extend(keyless);
    args.push(&image);
    let out = sigil(d, &args);
    let r: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(r["trustRoot"], serde_json::json!({"source": "file", "path": root, "sha256": sha256}));
    // Without --trusted-root: the embedded root, named with its digest, on stderr and in JSON.
    let mut args = vec!["inspect", "-o", "json"];
    args.extend(keyless);
    args.push(&image);
    let out = sigil(d, &args);
    assert_code(&out, 0);
    let r: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(r["trustRoot"]["source"], "embedded");
    let embedded = r["trustRoot"]["sha256"].as_str().unwrap();
    assert!(stderr(&out).contains(&format!("embedded in this build ({embedded})")), "{}", stderr(&out));
}

/// A keyless attestation stored the cosign way (the DSSE envelope as the `.att` layer, the
/// Fulcio certificate and the Rekor entry with its SET as annotations), built from the
/// production `happy-path-intoto-in-dsse-v3` conformance bundle. Its statement's subject is
/// `a.txt`, so the "image" is addressed by a.txt's digest: every check passes, end to end.
#[test]
fn keyless_attestation_with_production_material() {
    let vectors = vectors();
    let b64 = base64::engine::general_purpose::STANDARD;
    let reg = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let root = vectors.join("trust/public-good.trusted_root.json");
    let root = root.to_str().unwrap();
    let case = vectors.join("sigstore-conformance/bundle-verify/happy-path-intoto-in-dsse-v3/bundle.sigstore.json");
    let b: Value = serde_json::from_slice(&std::fs::read(case).unwrap()).unwrap();
    let (pem, rekor) = cosign_material(&b);
    let a_txt = std::fs::read(vectors.join("sigstore-conformance/a.txt")).unwrap();
    let digest = sigil::digest::Digest::sha256(&a_txt);
    let store = reg.store("keyless/att");
    let attach_att = |envelope: &[u8], with_bundle: bool| {
        let mut ann: std::collections::BTreeMap<String, String> = [
            (SIGNATURE_ANNOTATION.to_owned(), String::new()),
            ("predicateType".to_owned(), "https://slsa.dev/provenance/v1".to_owned()),
            ("dev.sigstore.cosign/certificate".to_owned(), pem.clone()),
        ]
        .into_iter()
        .collect();
        if with_bundle {
            ann.insert("dev.sigstore.cosign/bundle".into(), rekor.to_string());
        }
        rt().block_on(async {
            store.put_blob(envelope.to_vec()).await.unwrap();
            let mut layer = Descriptor::of("application/vnd.dsse.envelope.v1+json", envelope);
            layer.annotations = Some(ann);
            let (manifest, config) = signature_manifest(vec![layer]);
            store.put_blob(config).await.unwrap();
            store
                .put_manifest(&ManifestRef::Tag(format!("{}.att", digest.tag_stem())), OCI_MANIFEST, manifest)
                .await
                .unwrap();
        });
    };
    let image = format!("{}/keyless/att@{digest}", reg.host());
    let verify = |identity: &str, extra: &[&str]| {
        let mut args = vec![
            "verify-attestation",
            "--allow-http-registry",
            "--trusted-root",
            root,
            "--certificate-identity",
            identity,
            "--certificate-oidc-issuer",
            ISSUER,
        ];
        args.extend_from_slice(extra);
        args.push(&image);
        sigil(d, &args)
    };
    let envelope = serde_json::to_vec(&b["dsseEnvelope"]).unwrap();
    attach_att(&envelope, true);
    let out = verify(IDENTITY, &["--type", "slsaprovenance1"]);
    assert_code(&out, 0);
    assert!(stderr(&out).contains("keyless"), "{}", stderr(&out));
    let st: Value = serde_json::from_str(stdout(&out).lines().next().unwrap()).unwrap();
    assert_eq!(st["subject"][0]["digest"]["sha256"], digest.hex());
    assert_eq!(st["predicate"]["buildDefinition"]["buildType"], "https://actions.github.io/buildtypes/workflow/v1");
    // Identity regexps, anchored.
    let out = sigil(
        d,
        &[
            "verify-attestation",
            "--allow-http-registry",
            "--trusted-root",
            root,
            "--certificate-identity-regexp",
            "https://github\\.com/sigstore-conformance/.*",
            "--certificate-oidc-issuer-regexp",
            "https://token\\.actions\\.githubusercontent\\.com",
            &image,
        ],
    );
    assert_code(&out, 0);
    // The auditor's report: who (certificate identity, issuer) and when (Rekor time).
    let out = sigil(
        d,
        &[
            "inspect",
            "--allow-http-registry",
            "--trusted-root",
            root,
            "--certificate-identity",
            IDENTITY,
            "--certificate-oidc-issuer",
            ISSUER,
            "-o",
            "json",
            &image,
        ],
    );
    assert_code(&out, 0);
    let r: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    let att = &r["report"]["attestations"][0];
    assert_eq!(att["signer"], serde_json::json!({"kind": "keyless", "identity": IDENTITY, "issuer": ISSUER}));
    assert!(att["time"].as_str().unwrap().starts_with("2024-12-16"), "{att}");
    assert_eq!(att["summary"]["kind"], "slsa-provenance");
    // Wrong type, another identity: rejected, with the check named.
    assert_code(&verify(IDENTITY, &["--type", "cyclonedx"]), 12);
    let out = verify("https://github.com/someone/else/.github/workflows/x.yml@refs/heads/main", &[]);
    assert_code(&out, 12);
    assert!(stderr(&out).contains("certificate identity"), "{}", stderr(&out));
    // An envelope whose statement was changed: the log entry and signature no longer match.
    let mut tampered = b["dsseEnvelope"].clone();
    let payload = b64.decode(tampered["payload"].as_str().unwrap()).unwrap();
    let changed = String::from_utf8(payload).unwrap().replace("aa-test", "bb-test");
    tampered["payload"] = Value::String(b64.encode(changed));
    attach_att(&serde_json::to_vec(&tampered).unwrap(), true);
    let out = verify(IDENTITY, &[]);
    assert_code(&out, 12);
    assert!(stderr(&out).contains("rejected"), "{}", stderr(&out));
    // No Rekor evidence: keyless attestations need it.
    attach_att(&envelope, false);
    let out = verify(IDENTITY, &[]);
    assert_code(&out, 12);
    assert!(stderr(&out).contains("Rekor"), "{}", stderr(&out));
}

/// cosign's keyless attestations are logged as Rekor `intoto` 0.0.2 entries. Three
/// sigstore-conformance cases carry exactly that material (certificate, intoto/0.0.2 entry
/// with its SET, envelope), each with its own trusted root: written into `.att` layers the
/// cosign way, the happy case verifies end to end and the two `_fail` cases are refused.
#[test]
fn keyless_attestations_with_intoto_entries_as_cosign_logs_them() {
    let vectors = vectors();
    let reg = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let store = reg.store("keyless/intoto");
    for (case, want, why) in [
        ("intoto-with-custom-trust-root", 0, ""),
        ("intoto-log-entry-mismatch_fail", 12, "rejected: transparency log"),
        ("intoto-expired-certificate_fail", 12, "rejected: certificate"),
    ] {
        let case = vectors.join("sigstore-conformance/bundle-verify").join(case);
        let b: Value = serde_json::from_slice(&std::fs::read(case.join("bundle.sigstore.json")).unwrap()).unwrap();
        let kind = &b["verificationMaterial"]["tlogEntries"][0]["kindVersion"];
        assert_eq!(*kind, serde_json::json!({"kind": "intoto", "version": "0.0.2"}));
        let (pem, rekor) = cosign_material(&b);
        let digest = sigil::digest::Digest::sha256(&std::fs::read(case.join("artifact")).unwrap());
        let envelope = serde_json::to_vec(&b["dsseEnvelope"]).unwrap();
        let ann: std::collections::BTreeMap<String, String> = [
            (SIGNATURE_ANNOTATION.to_owned(), String::new()),
            ("predicateType".to_owned(), "https://slsa.dev/provenance/v1".to_owned()),
            ("dev.sigstore.cosign/certificate".to_owned(), pem),
            ("dev.sigstore.cosign/bundle".to_owned(), rekor.to_string()),
        ]
        .into_iter()
        .collect();
        rt().block_on(async {
            store.put_blob(envelope.clone()).await.unwrap();
            let mut layer = Descriptor::of("application/vnd.dsse.envelope.v1+json", &envelope);
            layer.annotations = Some(ann);
            let (manifest, config) = signature_manifest(vec![layer]);
            store.put_blob(config).await.unwrap();
            let tag = ManifestRef::Tag(format!("{}.att", digest.tag_stem()));
            store.put_manifest(&tag, OCI_MANIFEST, manifest).await.unwrap();
        });
        let root = case.join("trusted_root.json");
        let image = format!("{}/keyless/intoto@{digest}", reg.host());
        let out = sigil(
            d,
            &[
                "verify-attestation",
                "--allow-http-registry",
                "--trusted-root",
                root.to_str().unwrap(),
                "--certificate-identity",
                IDENTITY,
                "--certificate-oidc-issuer",
                ISSUER,
                "--type",
                "slsaprovenance1",
                &image,
            ],
        );
        assert_code(&out, want);
        if want == 0 {
            let st: Value = serde_json::from_str(stdout(&out).lines().next().unwrap()).unwrap();
            assert_eq!(st["subject"][0]["digest"]["sha256"], digest.hex());
        } else {
            assert!(stdout(&out).is_empty());
            assert!(stderr(&out).contains(why), "{}", stderr(&out));
        }
    }
}
