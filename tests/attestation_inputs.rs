//! Attestation inputs sigil must refuse, each with a clear message and exit code, without
//! losing what is already attached: the in-toto/DSSE vectors of `testdata/intoto` (pure API
//! and CLI) and malformed predicates.

mod attestation_support;
mod common;

use std::path::Path;
use std::time::Duration;

use attestation_support::*;
use common::*;
use sigil::digest::Digest;
use sigil::dsse::Envelope;
use sigil::intoto::{Statement, StatementError, STATEMENT_V01, STATEMENT_V1};
use sigil::keys::{KeyAlgorithm, PrivateKey, PublicKey};
use sigil::oci::layout::LayoutStore;
use sigil::oci::manifest::Descriptor;
use sigil::policy::SlsaExpectations;
use sigil::verify::attestation::{check_envelope, AttestationPolicy};
use sigil::verify::Rejection;

fn public_key(file: &str) -> PublicKey {
    PublicKey::from_pem(&vector(file)).expect("public key")
}

fn check(blob: &[u8], key: &PublicKey, predicate_type: Option<&str>) -> Result<String, String> {
    check_at(blob, &vector_image_digest(), key, predicate_type)
}

fn check_at(blob: &[u8], image: &Digest, key: &PublicKey, predicate_type: Option<&str>) -> Result<String, String> {
    let slsa = SlsaExpectations::default();
    let policy = AttestationPolicy { key, predicate_type, max_blob_bytes: 1 << 20, slsa: &slsa, checks: &[] };
    match check_envelope(blob, image, &policy) {
        Ok((statement, predicate_type)) => {
            assert_eq!(statement["predicateType"], predicate_type.as_str());
            Ok(statement["_type"].as_str().unwrap_or_default().to_owned())
        }
        Err(Rejection::Attestation(why)) => Err(why),
        Err(other) => panic!("unexpected rejection kind: {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------
// The vectors, through the pure API.

#[test]
fn vectors_are_self_consistent_and_documented() {
    // The subject digest is the manifest's; the manifest names the config and layer files.
    let manifest = vector("image-manifest.json");
    assert_eq!(Digest::sha256(&manifest), vector_image_digest());
    let text = String::from_utf8(manifest).unwrap();
    assert!(text.contains(&Digest::sha256(&vector("image-config.json")).to_string()));
    assert!(text.contains(&Digest::sha256(&vector("image-layer.bin")).to_string()));
    assert_eq!(
        vector("signer.pub"),
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/keys/cosign-p256.pub")).unwrap()
    );
    assert_eq!(vector("other.pub"), std::fs::read(example_pub()).unwrap());
    // Every file is described in the README.
    let readme = String::from_utf8(vector("README.md")).unwrap();
    for entry in std::fs::read_dir(vectors_dir()).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name != "README.md" && name != "make.sh" {
            assert!(readme.contains(&format!("`{name}`")), "{name} is not described in testdata/intoto/README.md");
        }
    }
}

#[test]
fn vector_statements_parse_as_documented() {
    let v1 = Statement::parse(&vector("statement-v1.json")).expect("v1");
    assert_eq!(v1.kind, STATEMENT_V1);
    assert!(v1.is_about(&vector_image_digest()));
    assert_eq!(v1.predicate_type, SLSA1_URI);
    let v01 = Statement::parse(&vector("statement-v01.json")).expect("v0.1 as cosign writes it");
    assert_eq!(v01.kind, STATEMENT_V01);
    assert!(v01.is_about(&vector_image_digest()));
    match Statement::parse(&vector("statement-unknown-type.json")) {
        Err(e @ StatementError::UnknownType(_)) => {
            assert_eq!(e.to_string(), r#"unknown in-toto statement type "https://in-toto.io/Statement/v2""#)
        }
        other => panic!("unknown _type accepted or misreported: {other:?}"),
    }
    match Statement::parse(&vector("statement-no-subject.json")) {
        Err(e @ StatementError::Malformed(_)) => {
            assert!(e.to_string().starts_with("not an in-toto statement: missing field `subject`"), "{e}")
        }
        other => panic!("statement without subject accepted or misreported: {other:?}"),
    }
    // The payloads of the valid envelopes are these statements, byte for byte.
    for (env, st) in [("envelope-v1.json", "statement-v1.json"), ("envelope-v01.json", "statement-v01.json")] {
        let e = Envelope::parse(&vector(env)).unwrap();
        assert_eq!(e.payload_bytes().unwrap(), vector(st), "{env}");
    }
}

#[test]
fn vector_envelopes_check_as_documented() {
    let signer = public_key("signer.pub");
    let other = public_key("other.pub");
    let third = PrivateKey::generate(KeyAlgorithm::EcdsaP256).public_key();
    let no_sig = "no DSSE signature verifies with the key (1 signature(s) tried)";
    let table: &[(&str, Result<&str, &str>)] = &[
        ("envelope-v1.json", Ok(STATEMENT_V1)),
        ("envelope-v01.json", Ok(STATEMENT_V01)),
        ("envelope-two-signatures.json", Ok(STATEMENT_V1)),
        ("envelope-unknown-type.json", Err(r#"unknown in-toto statement type "https://in-toto.io/Statement/v2""#)),
        ("envelope-no-subject.json", Err("not an in-toto statement: missing field `subject`")),
        ("envelope-payloadtype-json.json", Err(r#"DSSE payload type "application/json" is not in-toto"#)),
        ("envelope-sig-over-payload.json", Err(no_sig)),
        ("envelope-tampered-payload.json", Err(no_sig)),
        ("not-json.txt", Err("not a DSSE envelope: ")),
    ];
    for (file, want) in table {
        let got = check(&vector(file), &signer, None);
        match (want, &got) {
            (Ok(kind), Ok(k)) => assert_eq!(k, kind, "{file}"),
            (Err(why), Err(e)) => assert!(e.starts_with(why), "{file}: {e:?} does not start with {why:?}"),
            _ => panic!("{file}: expected {want:?}, got {got:?}"),
        }
    }
    // Two signatures: either key verifies, a third does not (and the message counts both).
    let two = vector("envelope-two-signatures.json");
    assert!(check(&two, &other, None).is_ok());
    assert_eq!(check(&two, &third, None), Err("no DSSE signature verifies with the key (2 signature(s) tried)".into()));
    // One-signature envelopes do not verify with another key.
    assert_eq!(check(&vector("envelope-v1.json"), &other, None), Err(no_sig.into()));
    // The requested type is the signed predicateType.
    assert_eq!(
        check(&vector("envelope-v1.json"), &signer, Some("https://cyclonedx.org/bom")),
        Err(r#"predicate type is "https://slsa.dev/provenance/v1", not the requested "https://cyclonedx.org/bom""#
            .into())
    );
    assert!(check(&vector("envelope-v01.json"), &signer, Some(SLSA1_URI)).is_ok());
    // The same envelope checked for another image.
    let elsewhere = Digest::sha256(b"another image");
    assert_eq!(
        check_at(&vector("envelope-v1.json"), &elsewhere, &signer, None),
        Err(format!("statement subject is not this image ({elsewhere})"))
    );
}

// ---------------------------------------------------------------------------------------
// Attest: predicates refused before anything is signed or written.

/// A layout holding the vector image, tagged v1, in `dir/img`.
struct LayoutCase {
    dir: tempfile::TempDir,
    store: LayoutStore,
    digest: Digest,
}

impl LayoutCase {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = LayoutStore::create(&dir.path().join("img")).unwrap();
        let digest = rt().block_on(push_vector_image(&store, "v1"));
        LayoutCase { dir, store, digest }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `index.json` and the sorted blob names: everything a write would change.
    fn snapshot(&self) -> (Vec<u8>, Vec<String>) {
        let root = self.path().join("img");
        let mut blobs: Vec<String> = std::fs::read_dir(root.join("blobs/sha256"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        blobs.sort();
        (std::fs::read(root.join("index.json")).unwrap(), blobs)
    }

    fn attest(&self, predicate_type: &str, predicate: &[u8]) -> std::process::Output {
        std::fs::write(self.path().join("predicate.json"), predicate).unwrap();
        let password = example_password();
        sigil_env(
            self.path(),
            &[
                "attest",
                "--key",
                &example_key(),
                "--type",
                predicate_type,
                "--predicate",
                "predicate.json",
                "oci:img:v1",
            ],
            &[("SIGIL_PASSWORD", &password)],
        )
    }

    fn verify(&self, key: &str, extra: &[&str]) -> std::process::Output {
        let mut args = vec!["verify-attestation", "--key", key];
        args.extend_from_slice(extra);
        args.push("oci:img:v1");
        sigil(self.path(), &args)
    }

    fn attach(&self, envelope: &str) {
        rt().block_on(attach_envelope(&self.store, &self.digest, vector(envelope), SLSA1_URI));
    }

    fn layers(&self) -> Vec<Descriptor> {
        rt().block_on(att_layers(&self.store, &self.digest))
    }
}

/// `attest` exits 1 with `message` on stderr and writes nothing.
#[track_caller]
fn assert_refused(case: &LayoutCase, predicate_type: &str, predicate: &[u8], message: &str) {
    let before = case.snapshot();
    let out = case.attest(predicate_type, predicate);
    assert_code(&out, 1);
    let err = stderr(&out);
    assert!(
        err.contains(message),
        "--type {predicate_type} {:?}: want {message:?} in\n{err}",
        String::from_utf8_lossy(predicate)
    );
    assert!(err.contains("nothing was signed"), "{err}");
    assert!(stdout(&out).is_empty(), "{}", stdout(&out));
    assert_eq!(case.snapshot(), before, "the layout changed although attest was refused");
}

#[test]
fn predicate_not_json_is_refused_and_nothing_is_written() {
    let case = LayoutCase::new();
    let types = [
        ("custom", "https://cosign.sigstore.dev/attestation/v1"),
        ("spdxjson", "https://spdx.dev/Document"),
        ("cyclonedx", "https://cyclonedx.org/bom"),
        ("openvex", "https://openvex.dev/ns"),
        ("vuln", "https://cosign.sigstore.dev/attestation/vuln/v1"),
        ("slsaprovenance1", SLSA1_URI),
        ("slsaprovenance02", "https://slsa.dev/provenance/v0.2"),
        ("https://example.com/predicate/v1", "https://example.com/predicate/v1"),
    ];
    for (name, uri) in types {
        for bad in [&b"SPDXVersion: SPDX-2.3\n"[..], b"", b"{\"truncated\": ", b"\xff\xfe{}"] {
            assert_refused(&case, name, bad, &format!("predicate is not valid {uri}: (document): not JSON: "));
        }
        // JSON, but not an object.
        for bad in [&b"[1, 2]"[..], b"\"text\"", b"null", b"42"] {
            assert_refused(&case, name, bad, &format!("predicate is not valid {uri}: "));
            assert_refused(&case, name, bad, "must be a JSON object");
        }
    }
    // On a registry: refused before any request, so nothing can have been written.
    let reg = Registry::start();
    let digest = rt().block_on(push_vector_image(&reg.store("inputs/notjson"), "v1"));
    let image = format!("{}/inputs/notjson:v1", reg.host());
    std::fs::write(case.path().join("bad.json"), "SPDXVersion: SPDX-2.3\n").unwrap();
    let requests = reg.request_count();
    let password = example_password();
    let out = sigil_env(
        case.path(),
        &[
            "attest",
            "--allow-http-registry",
            "--key",
            &example_key(),
            "--type",
            "spdxjson",
            "--predicate",
            "bad.json",
            &image,
        ],
        &[("SIGIL_PASSWORD", &password)],
    );
    assert_code(&out, 1);
    assert!(stderr(&out).contains("not JSON"), "{}", stderr(&out));
    std::thread::sleep(Duration::from_millis(200)); // the access log is written asynchronously
    assert_eq!(reg.request_count(), requests, "attest talked to the registry");
    assert!(rt().block_on(att_manifest(&reg.store("inputs/notjson"), &digest)).is_none());
    // Nothing attached to the layout image at all.
    let out = sigil(case.path(), &["tree", "-o", "json", "oci:img:v1"]);
    assert_code(&out, 0);
    let t: serde_json::Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(t["attachments"], serde_json::json!([]));
    // The same image attests fine with a JSON predicate.
    assert_code(&case.attest("cyclonedx", br#"{"bomFormat":"CycloneDX","specVersion":"1.5"}"#), 0);
    assert_code(&case.verify(&example_pub(), &["--type", "cyclonedx"]), 0);
}

const SLSA1_OK: &str =
    r#"{"buildDefinition":{"buildType":"t","externalParameters":{}},"runDetails":{"builder":{"id":"b"}}}"#;

#[test]
fn slsa_v1_predicate_missing_required_fields_names_the_field() {
    let case = LayoutCase::new();
    let cases: &[(&str, &str)] = &[
        (r#"{"runDetails":{"builder":{"id":"b"}}}"#, "buildDefinition: missing"),
        (r#"{"buildDefinition":"x","runDetails":{"builder":{"id":"b"}}}"#, "buildDefinition: must be an object"),
        (
            r#"{"buildDefinition":{"externalParameters":{}},"runDetails":{"builder":{"id":"b"}}}"#,
            "buildDefinition.buildType: missing",
        ),
        (
            r#"{"buildDefinition":{"buildType":"","externalParameters":{}},"runDetails":{"builder":{"id":"b"}}}"#,
            "buildDefinition.buildType: must be a non-empty string",
        ),
        (
            r#"{"buildDefinition":{"buildType":7,"externalParameters":{}},"runDetails":{"builder":{"id":"b"}}}"#,
            "buildDefinition.buildType: must be a non-empty string",
        ),
        (
            r#"{"buildDefinition":{"buildType":"t"},"runDetails":{"builder":{"id":"b"}}}"#,
            "buildDefinition.externalParameters: missing",
        ),
        (
            r#"{"buildDefinition":{"buildType":"t","externalParameters":[]},"runDetails":{"builder":{"id":"b"}}}"#,
            "buildDefinition.externalParameters: must be an object",
        ),
        (r#"{"buildDefinition":{"buildType":"t","externalParameters":{}}}"#, "runDetails: missing"),
        (
            r#"{"buildDefinition":{"buildType":"t","externalParameters":{}},"runDetails":{}}"#,
            "runDetails.builder.id: missing",
        ),
        (
            r#"{"buildDefinition":{"buildType":"t","externalParameters":{}},"runDetails":{"builder":{"id":""}}}"#,
            "runDetails.builder.id: must be a non-empty string",
        ),
        // A v0.2 predicate given as v1.
        (r#"{"builder":{"id":"b"},"buildType":"t"}"#, "buildDefinition: missing"),
    ];
    for (predicate, field) in cases {
        let message = format!("error: predicate is not valid {SLSA1_URI}: {field}");
        assert_refused(&case, "slsaprovenance1", predicate.as_bytes(), &message);
        // The same checks apply when the type is given as its URI.
        assert_refused(&case, SLSA1_URI, predicate.as_bytes(), &message);
    }
    assert_code(&case.attest("slsaprovenance1", SLSA1_OK.as_bytes()), 0);
    assert_eq!(case.layers().len(), 1);
}

#[test]
fn slsa_v02_predicate_missing_required_fields_names_the_field() {
    let case = LayoutCase::new();
    let uri = "https://slsa.dev/provenance/v0.2";
    let cases: &[(&str, &str)] = &[
        (r#"{"buildType":"t"}"#, "builder.id: missing"),
        (r#"{"builder":{},"buildType":"t"}"#, "builder.id: missing"),
        (r#"{"builder":{"id":""},"buildType":"t"}"#, "builder.id: must be a non-empty string"),
        (r#"{"builder":{"id":"b"}}"#, "buildType: missing"),
        (r#"{"builder":{"id":"b"},"buildType":["t"]}"#, "buildType: must be a non-empty string"),
        (r#"{"builder":{"id":"b"},"buildType":"t","invocation":"x"}"#, "invocation: must be an object"),
        (r#"{"builder":{"id":"b"},"buildType":"t","materials":{}}"#, "materials: must be an array"),
        // A v1 predicate given as v0.2.
        (SLSA1_OK, "builder.id: missing"),
    ];
    for (predicate, field) in cases {
        let message = format!("error: predicate is not valid {uri}: {field}");
        assert_refused(&case, "slsaprovenance02", predicate.as_bytes(), &message);
    }
    let ok = r#"{"builder":{"id":"b"},"buildType":"t","invocation":{},"materials":[]}"#;
    assert_code(&case.attest("slsaprovenance02", ok.as_bytes()), 0);
    assert_code(&case.verify(&example_pub(), &["--type", "slsaprovenance02", "--builder-id", "b"]), 0);
}

// ---------------------------------------------------------------------------------------
// Verify-attestation: bad envelopes attached to an image (vectors, through the CLI).

/// Attaches `file`, expects verify-attestation to refuse it (12, `why` on stderr); then a
/// valid attestation added next to it verifies and the bad one is still reported.
fn rejected_on_a_layout(file: &str, why: &str) {
    let case = LayoutCase::new();
    let signer = vector_path("signer.pub");
    case.attach(file);
    let out = case.verify(&signer, &[]);
    assert_code(&out, 12);
    assert!(stdout(&out).is_empty(), "{}", stdout(&out));
    let err = stderr(&out);
    let layer = Digest::sha256(&vector(file));
    assert!(err.contains(&format!("✗ attestation {layer} rejected: attestation: {why}")), "{err}");
    assert!(err.contains("no attestation verified: NOT VERIFIED"), "{err}");
    // Nothing lost, nothing hidden: the bad layer stays, a good one next to it verifies.
    case.attach("envelope-v1.json");
    assert_eq!(case.layers().len(), 2);
    let out = case.verify(&signer, &["--type", "slsaprovenance1"]);
    assert_code(&out, 0);
    let lines: Vec<String> = stdout(&out).lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    let st: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(st, serde_json::from_slice::<serde_json::Value>(&vector("statement-v1.json")).unwrap());
    assert!(stderr(&out).contains(why), "{}", stderr(&out));
}

#[test]
fn statement_with_unknown_type_is_rejected() {
    rejected_on_a_layout(
        "envelope-unknown-type.json",
        r#"unknown in-toto statement type "https://in-toto.io/Statement/v2""#,
    );
}

#[test]
fn statement_without_subject_is_rejected() {
    rejected_on_a_layout("envelope-no-subject.json", "not an in-toto statement: missing field `subject`");
}

#[test]
fn envelope_payload_type_not_intoto_is_rejected() {
    rejected_on_a_layout("envelope-payloadtype-json.json", r#"DSSE payload type "application/json" is not in-toto"#);
}

#[test]
fn dsse_signature_over_payload_instead_of_pae_is_rejected() {
    rejected_on_a_layout(
        "envelope-sig-over-payload.json",
        "no DSSE signature verifies with the key (1 signature(s) tried)",
    );
}

#[test]
fn envelope_with_tampered_payload_is_rejected() {
    rejected_on_a_layout(
        "envelope-tampered-payload.json",
        "no DSSE signature verifies with the key (1 signature(s) tried)",
    );
}

#[test]
fn envelope_that_is_not_json_is_rejected() {
    rejected_on_a_layout("not-json.txt", "not a DSSE envelope: ");
}

#[test]
fn cosign_v01_and_two_signature_envelopes_verify() {
    let case = LayoutCase::new();
    case.attach("envelope-v01.json");
    case.attach("envelope-two-signatures.json");
    let out = case.verify(&vector_path("signer.pub"), &["--type", "slsaprovenance1"]);
    assert_code(&out, 0);
    assert_eq!(stdout(&out).lines().count(), 2);
    // Only the two-signature envelope carries other.pub's signature.
    let out = case.verify(&vector_path("other.pub"), &["--type", "slsaprovenance1"]);
    assert_code(&out, 0);
    assert_eq!(stdout(&out).lines().count(), 1);
    assert!(stderr(&out).contains("no DSSE signature verifies with the key (1 signature(s) tried)"));
}
