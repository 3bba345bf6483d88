//! End-to-end CLI flows on a local OCI image layout (no registry at all).

mod common;

use common::*;
use serde_json::Value;

fn setup() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let out = sigil(dir.path(), &["generate-key-pair"]);
    assert_code(&out, 0);
    layout_with_image(&dir.path().join("img"), "v1", "one");
    (dir, "oci:img:v1".to_string())
}

#[test]
fn generate_sign_verify_tree() {
    let (dir, image) = setup();
    let d = dir.path();
    let mode = std::fs::metadata(d.join("sigil.key")).unwrap().permissions();
    assert_eq!(std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777, 0o600);
    let key = std::fs::read_to_string(d.join("sigil.key")).unwrap();
    assert!(key.starts_with("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----"));

    let out = sigil(d, &["sign", "--key", "sigil.key", "-a", "env=prod", &image]);
    assert_code(&out, 0);
    assert!(stderr(&out).contains("the digest is what gets signed"), "{}", stderr(&out));

    let out = sigil(d, &["verify", "--key", "sigil.pub", &image]);
    assert_code(&out, 0);
    let v: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(v["verified"], true);
    assert_eq!(v["signatures"][0]["critical"]["type"], "cosign container image signature");
    assert_eq!(v["signatures"][0]["optional"]["env"], "prod");
    assert_eq!(v["signatures"][0]["critical"]["image"]["docker-manifest-digest"], v["digest"]);

    // Required annotations must be present.
    let out = sigil(d, &["verify", "--key", "sigil.pub", "-a", "env=prod", &image]);
    assert_code(&out, 0);
    let out = sigil(d, &["verify", "--key", "sigil.pub", "-a", "env=dev", &image]);
    assert_code(&out, 12);
    assert!(stdout(&out).is_empty());

    let out = sigil(d, &["tree", "-o", "json", &image]);
    assert_code(&out, 0);
    let t: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(t["attachments"][0]["kind"], "sig");
    assert_eq!(t["attachments"][0]["layers"].as_array().unwrap().len(), 1);
    let out = sigil(d, &["tree", &image]);
    assert_code(&out, 0);
    assert!(stdout(&out).contains("Signatures"));
}

#[test]
fn appending_keeps_signatures_and_skips_identical() {
    let (dir, image) = setup();
    let d = dir.path();
    let out = sigil(d, &["generate-key-pair", "--algorithm", "ed25519", "--output-key-prefix", "ed"]);
    assert_code(&out, 0);
    assert_code(&sigil(d, &["sign", "--key", "sigil.key", &image]), 0);
    // ECDSA here is deterministic (RFC 6979): the same key and payload give the same layer.
    let again = sigil(d, &["sign", "--key", "sigil.key", &image]);
    assert_code(&again, 0);
    assert!(stderr(&again).contains("nothing added"), "{}", stderr(&again));
    assert_code(&sigil(d, &["sign", "--key", "ed.key", &image]), 0);
    let out = sigil(d, &["tree", "-o", "json", &image]);
    let t: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(t["attachments"][0]["layers"].as_array().unwrap().len(), 2);
    assert_code(&sigil(d, &["verify", "--key", "sigil.pub", &image]), 0);
    assert_code(&sigil(d, &["verify", "--key", "ed.pub", &image]), 0);
}

#[test]
fn verification_says_no() {
    let (dir, image) = setup();
    let d = dir.path();
    // No signatures yet.
    let out = sigil(d, &["verify", "--key", "sigil.pub", &image]);
    assert_code(&out, 10);
    assert!(stdout(&out).is_empty());
    assert_code(&sigil(d, &["sign", "--key", "sigil.key", &image]), 0);
    // Another key.
    assert_code(&sigil(d, &["generate-key-pair", "--output-key-prefix", "other"]), 0);
    let out = sigil(d, &["verify", "--key", "other.pub", &image]);
    assert_code(&out, 12);
    assert!(stderr(&out).contains("signature does not match"), "{}", stderr(&out));
    // Missing image tag.
    let out = sigil(d, &["verify", "--key", "sigil.pub", "oci:img:nope"]);
    assert_code(&out, 11);
    // A signature copied onto another digest is rejected (payload names the first image).
    let img = d.join("img");
    let store = sigil::oci::layout::LayoutStore::open(&img).unwrap();
    let second = rt().block_on(push_image(&store, Some("v2"), "two", "amd64"));
    let first_sig = std::fs::read_to_string(img.join("index.json")).unwrap();
    let idx: Value = serde_json::from_str(&first_sig).unwrap();
    let sig_entry = idx["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"].as_str().unwrap().ends_with(".sig"))
        .unwrap()
        .clone();
    let mut copied = sig_entry.clone();
    copied["annotations"]["org.opencontainers.image.ref.name"] = Value::String(format!("{}.sig", second.tag_stem()));
    let mut idx2 = idx.clone();
    idx2["manifests"].as_array_mut().unwrap().push(copied);
    std::fs::write(img.join("index.json"), serde_json::to_vec(&idx2).unwrap()).unwrap();
    let out = sigil(d, &["verify", "--key", "sigil.pub", "oci:img:v2"]);
    assert_code(&out, 12);
    assert!(stderr(&out).contains("not for this image"), "{}", stderr(&out));
}

#[test]
fn bad_keys_and_passwords() {
    let (dir, image) = setup();
    let d = dir.path();
    let out = sigil_env(d, &["sign", "--key", "sigil.key", &image], &[("SIGIL_PASSWORD", "wrong")]);
    assert_code(&out, 1);
    assert!(stderr(&out).contains("wrong password"), "{}", stderr(&out));
    // COSIGN_PASSWORD is the fallback.
    let out = sigil_env(d, &["sign", "--key", "sigil.key", &image], &[("COSIGN_PASSWORD", PASSWORD)]);
    assert_code(&out, 0);
    // No password source and no terminal: a clear error, not a hang.
    let out = sigil_env(d, &["sign", "--key", "sigil.key", &image], &[]);
    assert_code(&out, 1);
    assert!(stderr(&out).contains("SIGIL_PASSWORD"), "{}", stderr(&out));

    let key = std::fs::read_to_string(d.join("sigil.key")).unwrap();
    std::fs::write(d.join("trunc.key"), &key[..key.len() / 2]).unwrap();
    let out = sigil(d, &["sign", "--key", "trunc.key", &image]);
    assert_code(&out, 1);
    assert!(stderr(&out).contains("truncated"), "{}", stderr(&out));

    // Unsupported scrypt parameters are refused before any work: no password is even asked.
    let vector = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/keys/scrypt-huge-n.vector"),
    )
    .unwrap();
    std::fs::write(d.join("huge.key"), vector.split_once("\n---\n").unwrap().1).unwrap();
    let out = sigil_env(d, &["sign", "--key", "huge.key", &image], &[]);
    assert_code(&out, 1);
    assert!(stderr(&out).contains("unsupported encrypted key parameters"), "{}", stderr(&out));

    std::fs::write(d.join("garbage.key"), b"\x00\x01garbage").unwrap();
    assert_code(&sigil(d, &["sign", "--key", "garbage.key", &image]), 1);

    // Refuse to overwrite without --force.
    let out = sigil(d, &["generate-key-pair"]);
    assert_code(&out, 1);
    assert!(stderr(&out).contains("--force"));
    assert_eq!(std::fs::read_to_string(d.join("sigil.key")).unwrap(), key);
    assert_code(&sigil(d, &["generate-key-pair", "--force"]), 0);

    // A private key where a public key is expected.
    let out = sigil(d, &["verify", "--key", "sigil.key", &image]);
    assert_code(&out, 1);
    assert!(stderr(&out).contains(".pub"), "{}", stderr(&out));

    // env:// keys.
    let pubkey = std::fs::read_to_string(d.join("sigil.pub")).unwrap();
    let out = sigil_env(d, &["verify", "--key", "env://PUBKEY", &image], &[("PUBKEY", &pubkey)]);
    // Fresh key pair: the image carries only signatures by the earlier key.
    assert_code(&out, 12);
}

#[test]
fn import_and_public_key() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    use p256::pkcs8::{EncodePrivateKey, LineEnding};
    let sk = p256::ecdsa::SigningKey::random(&mut rand_core::OsRng);
    std::fs::write(d.join("plain.pem"), sk.to_pkcs8_pem(LineEnding::LF).unwrap().as_bytes()).unwrap();
    assert_code(&sigil(d, &["import-key-pair", "--key", "plain.pem", "--output-key-prefix", "imp"]), 0);
    let out = sigil(d, &["public-key", "--key", "imp.key"]);
    assert_code(&out, 0);
    assert_eq!(stdout(&out), std::fs::read_to_string(d.join("imp.pub")).unwrap());
}

#[test]
fn malformed_attachments_are_could_not_check() {
    let (dir, image) = setup();
    let d = dir.path();
    assert_code(&sigil(d, &["sign", "--key", "sigil.key", &image]), 0);
    let img = d.join("img");
    let idx: Value = serde_json::from_slice(&std::fs::read(img.join("index.json")).unwrap()).unwrap();
    let sig = idx["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"].as_str().unwrap().ends_with(".sig"))
        .unwrap();
    let sig_digest = sig["digest"].as_str().unwrap().trim_start_matches("sha256:").to_string();
    let blob = img.join("blobs/sha256").join(&sig_digest);
    let original = std::fs::read(&blob).unwrap();
    // Signature manifest replaced by non-JSON (and its digest no longer matches).
    std::fs::write(&blob, b"not json").unwrap();
    let out = sigil(d, &["verify", "--key", "sigil.pub", &image]);
    assert_code(&out, 14);
    std::fs::write(&blob, &original).unwrap();
    // Payload blob over the cap.
    let out = sigil(d, &["verify", "--key", "sigil.pub", "--max-blob-size", "10", &image]);
    assert_code(&out, 14);
    assert!(stderr(&out).contains("--max-blob-size"), "{}", stderr(&out));
    assert_code(&sigil(d, &["verify", "--key", "sigil.pub", &image]), 0);
}

/// The JSON on stdout is a stable interface: these structs reject unknown fields, so adding,
/// renaming or dropping a field fails here first.
mod schema {
    use serde::Deserialize;

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    pub struct Signed {
        pub image: String,
        pub digest: String,
        pub signature: String,
        #[serde(rename = "signatureManifest")]
        pub signature_manifest: String,
        pub outcome: String,
        pub writes: u32,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    pub struct Verified {
        pub image: String,
        pub digest: String,
        pub verified: bool,
        pub signatures: Vec<Payload>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    pub struct Payload {
        pub critical: Critical,
        pub optional: Option<std::collections::BTreeMap<String, serde_json::Value>>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    pub struct Critical {
        pub identity: Identity,
        pub image: Image,
        #[serde(rename = "type")]
        pub kind: String,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    pub struct Identity {
        #[serde(rename = "docker-reference")]
        pub docker_reference: String,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    pub struct Image {
        #[serde(rename = "docker-manifest-digest")]
        pub docker_manifest_digest: String,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    pub struct Tree {
        pub image: String,
        pub digest: String,
        pub attachments: Vec<Attachment>,
        pub referrers: Vec<Referrer>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    pub struct Referrer {
        #[serde(rename = "mediaType")]
        pub media_type: String,
        pub size: u64,
        pub digest: String,
        #[serde(rename = "artifactType")]
        pub artifact_type: String,
        pub annotations: Option<std::collections::BTreeMap<String, String>>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    pub struct Attested {
        pub image: String,
        pub digest: String,
        pub attestation: String,
        #[serde(rename = "predicateType")]
        pub predicate_type: String,
        pub outcome: String,
        pub writes: u32,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    pub struct SbomAttached {
        pub image: String,
        pub attached: SbomArtifact,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    pub struct SbomArtifact {
        pub image: String,
        pub manifest: String,
        #[serde(rename = "artifactType")]
        pub artifact_type: String,
        pub blob: String,
        pub size: u64,
        pub indexing: serde_json::Value,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    pub struct Inspected {
        pub image: String,
        pub report: Report,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    pub struct Report {
        pub digest: String,
        pub signatures: Vec<SignatureEntry>,
        pub attestations: Vec<AttestationEntry>,
        pub sboms: Vec<serde_json::Value>,
        #[serde(rename = "hiddenUnverified")]
        pub hidden_unverified: usize,
        pub notes: Vec<String>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    pub struct SignatureEntry {
        pub verified: bool,
        pub layer: String,
        pub signer: Option<serde_json::Value>,
        pub time: Option<String>,
        pub payload: Option<Payload>,
        pub reason: Option<String>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    pub struct AttestationEntry {
        pub verified: bool,
        pub layer: String,
        #[serde(rename = "predicateType")]
        pub predicate_type: Option<String>,
        pub signer: Option<serde_json::Value>,
        pub time: Option<String>,
        pub summary: Option<serde_json::Value>,
        pub reason: Option<String>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    pub struct Attachment {
        pub kind: String,
        pub tag: String,
        pub manifest: String,
        pub size: u64,
        pub layers: Vec<Layer>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    pub struct Layer {
        pub digest: String,
        pub size: u64,
        #[serde(rename = "mediaType")]
        pub media_type: String,
        #[serde(rename = "predicateType", default)]
        pub predicate_type: Option<String>,
    }
}

#[test]
fn json_output_schema_is_pinned() {
    let (dir, image) = setup();
    let d = dir.path();
    let out = sigil(d, &["sign", "--key", "sigil.key", "-a", "k=v", &image]);
    assert_code(&out, 0);
    let s: schema::Signed = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(s.outcome, "added");
    let out = sigil(d, &["verify", "--key", "sigil.pub", &image]);
    let v: schema::Verified = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert!(v.verified);
    assert_eq!(v.signatures[0].critical.kind, "cosign container image signature");
    assert_eq!(v.signatures[0].critical.image.docker_manifest_digest, v.digest);
    let out = sigil(d, &["tree", "--output", "json", &image]);
    let t: schema::Tree = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(t.attachments.len(), 1);
    assert_eq!(t.attachments[0].kind, "sig");
    // One JSON document per line and image.
    let out = sigil(d, &["verify", "--key", "sigil.pub", &image, &image]);
    assert_eq!(stdout(&out).lines().count(), 2);
}

#[test]
fn json_output_schema_of_attestations_sboms_and_inspect_is_pinned() {
    let (dir, image) = setup();
    let d = dir.path();
    assert_code(&sigil(d, &["sign", "--key", "sigil.key", &image]), 0);
    std::fs::write(d.join("p.json"), r#"{"spdxVersion":"SPDX-2.3","packages":[{"name":"a"}]}"#).unwrap();
    let out = sigil(d, &["attest", "--key", "sigil.key", "--type", "spdxjson", "--predicate", "p.json", &image]);
    assert_code(&out, 0);
    let a: schema::Attested = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(a.predicate_type, "https://spdx.dev/Document");
    let out = sigil(d, &["attach", "sbom", "--sbom", "p.json", &image]);
    assert_code(&out, 0);
    let s: schema::SbomAttached = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(s.attached.artifact_type, "application/spdx+json");
    let out = sigil(d, &["tree", "-o", "json", &image]);
    let t: schema::Tree = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(t.referrers.len(), 1);
    let out = sigil(d, &["inspect", "--key", "sigil.pub", "--include-unverified", "-o", "json", &image]);
    assert_code(&out, 0);
    let r: schema::Inspected = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!((r.report.signatures.len(), r.report.attestations.len(), r.report.sboms.len()), (1, 1, 1));
}

#[test]
fn signed_payload_that_is_not_json_is_rejected() {
    let (dir, image) = setup();
    let d = dir.path();
    let store = sigil::oci::layout::LayoutStore::open(&d.join("img")).unwrap();
    let digest = sigil::digest::Digest::parse(
        serde_json::from_str::<Value>(&stdout(&sigil(d, &["tree", "-o", "json", &image]))).unwrap()["digest"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    let pem = std::fs::read(d.join("sigil.key")).unwrap();
    let key =
        sigil::keys::decrypt_private_key(&pem, &sigil::keys::Password::new(PASSWORD.as_bytes().to_vec())).unwrap();
    let garbage = b"this is not json".to_vec();
    let sig = key.sign(&garbage);
    rt().block_on(sigil::sign::attach_signature(&store, &digest, garbage, &sig)).unwrap();
    let out = sigil(d, &["verify", "--key", "sigil.pub", &image]);
    assert_code(&out, 12);
    assert!(stderr(&out).contains("signed payload is invalid"), "{}", stderr(&out));
}

#[test]
fn review_regressions_duplicate_annotations_and_read_only_verify() {
    let (dir, image) = setup();
    let d = dir.path();
    // A required annotation given twice is a usage error, not a silently dropped requirement.
    let out = sigil(d, &["verify", "--key", "sigil.pub", "-a", "k=1", "-a", "k=2", &image]);
    assert_code(&out, 2);
    assert!(stderr(&out).contains("given twice"), "{}", stderr(&out));
    // verify never creates a signature layout.
    let out = sigil(d, &["verify", "--key", "sigil.pub", "--signature-repository", "oci:nowhere", &image]);
    assert_ne!(code(&out), 0);
    assert!(!d.join("nowhere").exists(), "verify created a layout");
    // sign creates one when asked to store signatures there.
    assert_code(&sigil(d, &["sign", "--key", "sigil.key", "--signature-repository", "oci:sigs", &image]), 0);
    assert_code(&sigil(d, &["verify", "--key", "sigil.pub", "--signature-repository", "oci:sigs", &image]), 0);
}
