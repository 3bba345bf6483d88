//! Attestation inputs sigil must refuse, each with a clear message and exit code, without
//! losing what is already attached: the in-toto/DSSE vectors of `testdata/intoto` (pure API
//! and CLI), malformed predicates, oversized `.att` manifests and layers.

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
    let policy = AttestationPolicy {
        signer: sigil::verify::ImageSigner::Key(key),
        predicate_type,
        max_blob_bytes: 1 << 20,
        slsa: &slsa,
        checks: &[],
        formats: sigil::attachments::Formats::Any,
    };
    match check_envelope(blob, &Default::default(), image, &policy) {
        Ok((statement, predicate_type, _)) => {
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
    // (`custom` takes any text, as cosign's generic predicate does: it is wrapped in
    // `{"Data", "Timestamp"}`; see tests/attestations.rs.)
    let types = [
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
    assert!(err.contains(&format!("✗ legacy attestation {layer} rejected: attestation: {why}")), "{err}");
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

// ---------------------------------------------------------------------------------------
// Oversized `.att` manifests and layers: clear error, bounded memory and time, nothing lost.

const GIB: u64 = 1 << 30;
/// Address-space limit for runs that must not read a 1 GiB blob (sigil needs ~20 MiB).
const VMEM_KIB: u64 = 256 << 10;
/// What "bounded time" means here: far below what reading or hashing 1 GiB would take.
const QUICK: Duration = Duration::from_secs(5);

fn sparse_file(path: &Path, len: u64) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let f = std::fs::File::create(path).unwrap();
    f.set_len(len).unwrap();
}

#[test]
fn att_manifest_with_10000_layers_fails_cleanly_and_attest_refuses_to_append() {
    let reg = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let store = reg.store("inputs/many");
    let digest = rt().block_on(push_vector_image(&store, "v1"));
    let image = format!("{}/inputs/many:v1", reg.host());
    let signer = vector_path("signer.pub");
    let verify = || sigil(d, &["verify-attestation", "--allow-http-registry", "--key", &signer, &image]);
    let envelope = vector("envelope-v1.json");
    rt().block_on(attach_envelope(&store, &digest, envelope.clone(), SLSA1_URI));
    assert_code(&verify(), 0);

    // 10,000 layers (the valid one, repeated: the registry checks that each blob exists).
    let many = rt().block_on(put_att_manifest(&store, &digest, vec![att_layer(&envelope, SLSA1_URI); 10_000]));
    let limit_message = "manifest has 10000 layers or entries, over the limit of 1000 per manifest";
    let start = std::time::Instant::now();
    let out = verify();
    assert!(start.elapsed() < QUICK, "verify-attestation took {:?}", start.elapsed());
    assert_code(&out, 14);
    assert!(stdout(&out).is_empty());
    let err = stderr(&out);
    assert!(
        err.contains("could not check: attachment manifest sha256-") && err.contains(".att is malformed: "),
        "{err}"
    );
    assert!(err.contains(limit_message), "{err}");
    assert!(err.contains("NOT VERIFIED"), "{err}");
    // tree says the same, with the same code.
    let out = sigil(d, &["tree", "--allow-http-registry", &image]);
    assert_code(&out, 14);
    assert!(stderr(&out).contains(limit_message), "{}", stderr(&out));

    // attest must not rewrite a manifest it cannot read (that would drop 10,000 layers).
    std::fs::write(d.join("slsa.json"), SLSA1_OK).unwrap();
    let password = example_password();
    let out = sigil_env(
        d,
        &[
            "attest",
            "--allow-http-registry",
            "--key",
            &example_key(),
            "--type",
            "slsaprovenance1",
            "--predicate",
            "slsa.json",
            &image,
        ],
        &[("SIGIL_PASSWORD", &password)],
    );
    assert_code(&out, 1);
    let err = stderr(&out);
    assert!(err.contains(limit_message) && err.contains("nothing was written"), "{err}");
    // cosign refuses it too.
    let out = cosign(
        d,
        &["verify-attestation", "--key", &signer, "--insecure-ignore-tlog=true", "--allow-http-registry", &image],
    );
    assert_ne!(code(&out), 0);
    assert!(stderr(&out).contains("number of layers (10000) exceeded the limit (1000)"), "{}", stderr(&out));
    let now = rt().block_on(att_manifest(&store, &digest)).expect(".att manifest still there");
    assert_eq!(now.digest, many, "the .att manifest was replaced");
    assert_eq!(rt().block_on(att_layers(&store, &digest)).len(), 10_000);
}

#[test]
fn attest_on_a_full_att_manifest_refuses_rather_than_make_it_unreadable() {
    let case = LayoutCase::new();
    let envelope = vector("envelope-v1.json");
    store_blob(&case.store, envelope.clone());
    rt().block_on(put_att_manifest(&case.store, &case.digest, vec![att_layer(&envelope, SLSA1_URI); 1000]));
    let signer = vector_path("signer.pub");
    let out = case.verify(&signer, &[]);
    assert_code(&out, 0);
    let before = case.snapshot();
    let out = case.attest("slsaprovenance1", SLSA1_OK.as_bytes());
    if code(&out) == 0 {
        let after = case.verify(&signer, &[]);
        panic!(
            "attest appended to a full .att manifest (now {} layers); verify-attestation now exits {}:\n{}",
            case.layers().len(),
            code(&after),
            stderr(&after)
        );
    }
    // Expected: refused like the 10,000-layer case (exit 1, a message naming the limit),
    // with the manifest left as it was and its attestations still verifying.
    assert_code(&out, 1);
    assert!(stderr(&out).contains("1000"), "{}", stderr(&out));
    assert_eq!(case.snapshot(), before);
    assert_code(&case.verify(&signer, &[]), 0);
}

#[test]
fn layer_claiming_1_gib_is_not_read_and_nothing_is_lost() {
    let case = LayoutCase::new();
    // A descriptor claiming 1 GiB, and a 1 GiB (sparse) blob behind it.
    let huge = Digest::sha256(b"sigil test: a 1 GiB envelope");
    sparse_file(&case.path().join("img/blobs/sha256").join(huge.hex()), GIB);
    let mut layer = att_layer(b"", SLSA1_URI);
    layer.size = GIB;
    layer.digest = huge.clone();
    rt().block_on(put_att_manifest(&case.store, &case.digest, vec![layer.clone()]));
    let verify =
        |key: &str| sigil_limited(case.path(), &["verify-attestation", "--key", key, "oci:img:v1"], &[], VMEM_KIB);
    let too_big = format!("envelope {huge} is 1073741824 bytes, over the limit of 16777216");

    let (out, took) = verify(&example_pub());
    assert!(took < QUICK, "took {took:?}");
    assert_code(&out, 14);
    let err = stderr(&out);
    assert!(err.contains(&too_big) && err.contains("NOT VERIFIED"), "{err}");
    // The shared --max-blob-size takes 1 GiB, but verify-attestation reads no more than the
    // envelope cap (16 MiB): the 1 GiB envelope is still refused unread, within the memory cap.
    // see: issue 12
    let (out, took) = sigil_limited(
        case.path(),
        &["verify-attestation", "--key", &example_pub(), "--max-blob-size", "1073741824", "oci:img:v1"],
        &[],
        VMEM_KIB,
    );
    assert!(took < QUICK, "took {took:?}");
    assert_code(&out, 14);
    assert!(stderr(&out).contains(&too_big), "{}", stderr(&out));

    // attest appends next to it, keeping it.
    assert_code(&case.attest("slsaprovenance1", SLSA1_OK.as_bytes()), 0);
    let layers = case.layers();
    assert_eq!(layers.len(), 2);
    assert_eq!(layers[0], layer, "the 1 GiB descriptor was kept as it was");
    let (out, took) = verify(&example_pub());
    assert!(took < QUICK, "took {took:?}");
    assert_code(&out, 0);
    assert_eq!(stdout(&out).lines().count(), 1);
    assert!(stderr(&out).contains(&too_big), "{}", stderr(&out));
}

#[test]
fn blob_larger_than_its_descriptor_in_a_layout_is_refused_without_reading_it_all() {
    let case = LayoutCase::new();
    case.attach("envelope-v1.json");
    // A descriptor with an envelope's size whose blob is 1 GiB (sparse).
    let big = Digest::sha256(b"sigil test: blob larger than its descriptor");
    sparse_file(&case.path().join("img/blobs/sha256").join(big.hex()), GIB);
    let mut layer = att_layer(&vector("envelope-v1.json"), SLSA1_URI);
    layer.digest = big.clone();
    let good = case.layers();
    let mut layers = good.clone();
    layers.push(layer.clone());
    rt().block_on(put_att_manifest(&case.store, &case.digest, layers));
    let args = ["verify-attestation", "--key", &vector_path("signer.pub"), "oci:img:v1"];

    let (out, took) = sigil_limited(case.path(), &args, &[], VMEM_KIB);
    assert!(took < QUICK, "took {took:?}");
    assert_code(&out, 0);
    assert_eq!(stdout(&out).lines().count(), 1, "the valid attestation still verifies");
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "✗ legacy attestation {big} rejected: blob size does not match its descriptor's size of 904 bytes (envelope {big}: more bytes than that)"
        )),
        "{err}"
    );

    // Alone: content that is not what its descriptor says is refused ("no", not "could not
    // check": the registry or layout answered, with the wrong bytes).
    rt().block_on(put_att_manifest(&case.store, &case.digest, vec![layer]));
    let (out, took) = sigil_limited(case.path(), &args, &[], VMEM_KIB);
    assert!(took < QUICK, "took {took:?}");
    assert_code(&out, 12);
    assert!(stderr(&out).contains("does not match its descriptor"), "{}", stderr(&out));
}

/// Puts a sparse `len`-byte file into the registry's storage as blob `digest` of `repo` (the
/// registry serves it; its content does not hash to `digest`).
fn plant_registry_blob(reg: &Registry, repo: &str, digest: &Digest, len: u64) {
    let root = reg.log.parent().unwrap().join("data/docker/registry/v2");
    let hex = digest.hex();
    sparse_file(&root.join("blobs/sha256").join(&hex[..2]).join(hex).join("data"), len);
    let link = root.join("repositories").join(repo).join("_layers/sha256").join(hex).join("link");
    std::fs::create_dir_all(link.parent().unwrap()).unwrap();
    std::fs::write(link, digest.to_string()).unwrap();
}

#[test]
fn blob_served_larger_than_its_descriptor_by_a_registry_is_refused_without_reading_it() {
    let reg = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let store = reg.store("inputs/big");
    let digest = rt().block_on(push_vector_image(&store, "v1"));
    let envelope = vector("envelope-v1.json");
    rt().block_on(attach_envelope(&store, &digest, envelope.clone(), SLSA1_URI));
    // The registry serves 1 GiB for a layer whose descriptor gives an envelope's size.
    let big = Digest::sha256(b"sigil test: a registry blob larger than its descriptor");
    plant_registry_blob(&reg, "inputs/big", &big, GIB);
    let mut layer = att_layer(&envelope, SLSA1_URI);
    layer.digest = big.clone();
    let mut layers = rt().block_on(att_layers(&store, &digest));
    layers.push(layer.clone());
    rt().block_on(put_att_manifest(&store, &digest, layers));
    let image = format!("{}/inputs/big:v1", reg.host());
    let signer = vector_path("signer.pub");
    let args = ["verify-attestation", "--allow-http-registry", "--key", &signer, &image];

    let (out, took) = sigil_limited(d, &args, &[], VMEM_KIB);
    assert!(took < QUICK, "took {took:?}");
    assert_code(&out, 0);
    assert_eq!(stdout(&out).lines().count(), 1, "the valid attestation still verifies");
    let err = stderr(&out);
    assert!(
        err.contains(&format!(
            "✗ legacy attestation {big} rejected: blob size does not match its descriptor's size of 904 bytes (envelope {big}: more bytes than that)"
        )),
        "{err}"
    );

    // Alone: could not check.
    rt().block_on(put_att_manifest(&store, &digest, vec![layer]));
    let (out, took) = sigil_limited(d, &args, &[], VMEM_KIB);
    assert!(took < QUICK, "took {took:?}");
    assert_code(&out, 12);
    assert!(stderr(&out).contains("does not match its descriptor"), "{}", stderr(&out));
}

#[test]
fn blob_that_differs_from_its_descriptor_size_is_refused() {
    let reg = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let store = reg.store("inputs/size");
    let digest = rt().block_on(push_vector_image(&store, "v1"));
    let envelope = vector("envelope-v1.json");
    store_blob(&store, envelope.clone());
    // The valid envelope, under a descriptor that says it is one byte shorter.
    let mut layer = att_layer(&envelope, SLSA1_URI);
    layer.size -= 1;
    let short = layer.size;
    rt().block_on(put_att_manifest(&store, &digest, vec![layer]));
    let image = format!("{}/inputs/size:v1", reg.host());
    let signer = vector_path("signer.pub");
    let out = cosign(
        d,
        &["verify-attestation", "--key", &signer, "--insecure-ignore-tlog=true", "--allow-http-registry", &image],
    );
    // cosign reads no more than the descriptor says, and then the digest does not match.
    assert_ne!(code(&out), 0, "cosign refuses it:\n{}", stderr(&out));
    assert!(stderr(&out).contains(&format!("after reading {short} bytes")), "{}", stderr(&out));
    let out = sigil(d, &["verify-attestation", "--allow-http-registry", "--key", &signer, &image]);
    assert_ne!(code(&out), 0, "sigil accepted a blob larger than its descriptor:\n{}", stderr(&out));
    assert!(stderr(&out).contains("size"), "{}", stderr(&out));
}

fn store_blob<S: sigil::oci::Store>(store: &S, bytes: Vec<u8>) {
    rt().block_on(store.put_blob(bytes)).expect("push blob");
}

#[test]
fn many_large_layers_are_not_all_held_in_memory_at_once() {
    let reg = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let store = reg.store("inputs/wide");
    let digest = rt().block_on(push_vector_image(&store, "v1"));
    // 100 layers (the most read per image) of 16 MiB each (the most verify-attestation reads), as
    // the descriptors say: every one is within the limits on its own.
    let layers: Vec<Descriptor> = (0..100)
        .map(|i| {
            let d = Digest::sha256(format!("sigil test: wide layer {i}").as_bytes());
            plant_registry_blob(&reg, "inputs/wide", &d, 16 << 20);
            let mut l = att_layer(b"", SLSA1_URI);
            l.digest = d;
            l.size = 16 << 20;
            l
        })
        .collect();
    rt().block_on(put_att_manifest(&store, &digest, layers));
    let image = format!("{}/inputs/wide:v1", reg.host());
    let signer = vector_path("signer.pub");
    let args = ["verify-attestation", "--allow-http-registry", "--key", &signer, &image];
    let (out, took) = sigil_limited(dir.path(), &args, &[], VMEM_KIB);
    // Expected: a clean "no" (none of them hashes to its digest: the store answered with
    // other content), within the same memory bound as one oversized layer; not an
    // allocation failure.
    assert_code(&out, 12);
    assert!(stderr(&out).contains("does not match its digest"), "{}", stderr(&out));
    assert!(took < Duration::from_secs(30), "took {took:?}");
}

/// A statement whose `subject` names this image and whose `Subject` names another reads as
/// two different claims to sigil and to Go verifiers: refused (12), the key named.
// see: issue 8 §6
#[test]
fn statement_with_keys_differing_only_in_case_is_rejected() {
    let case = LayoutCase::new();
    let pem = std::fs::read(example_key()).unwrap();
    let key =
        sigil::keys::decrypt_private_key(&pem, &sigil::keys::Password::new(example_password().into_bytes())).unwrap();
    let subject = |hex: &str| format!(r#"[{{"name":"img","digest":{{"sha256":"{hex}"}}}}]"#);
    let statement = format!(
        r#"{{"_type":"{STATEMENT_V1}","subject":{},"predicateType":"{SLSA1_URI}","predicate":{{}},"Subject":{}}}"#,
        subject(case.digest.hex()),
        subject(&"0".repeat(64))
    );
    let envelope = Envelope::sign(sigil::dsse::INTOTO_PAYLOAD_TYPE, statement.as_bytes(), &key).to_bytes();
    rt().block_on(attach_envelope(&case.store, &case.digest, envelope, SLSA1_URI));
    let out = case.verify(&example_pub(), &[]);
    assert_code(&out, 12);
    let err = stderr(&out);
    assert!(err.contains("\"Subject\" appears twice"), "{err}");
    // Through the pure API too.
    assert!(
        matches!(Statement::parse(statement.as_bytes()), Err(StatementError::Malformed(m)) if m.contains("Subject"))
    );
}
