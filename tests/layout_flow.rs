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
        /// `legacy` or `bundle`.
        pub format: String,
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
        pub signatures: Vec<Claims>,
        /// The format of each signature, in the same order.
        pub formats: Vec<String>,
        /// Keyless only: the trusted root used.
        #[serde(rename = "trustRoot")]
        pub trust_root: Option<TrustRoot>,
    }

    /// `{"source":"file"|"tuf-cache"|"embedded","path"?,"url"?,"sha256"}`
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    pub struct TrustRoot {
        pub source: String,
        pub path: Option<String>,
        pub url: Option<String>,
        pub sha256: String,
    }

    /// A legacy signature's simple-signing payload, or a bundle signature's statement.
    #[derive(Deserialize)]
    #[serde(untagged)]
    #[allow(dead_code)]
    pub enum Claims {
        Legacy(Payload),
        Bundle(Statement),
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    pub struct Statement {
        #[serde(rename = "_type")]
        pub kind: String,
        pub subject: Vec<serde_json::Value>,
        #[serde(rename = "predicateType")]
        pub predicate_type: String,
        pub predicate: serde_json::Value,
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
        pub format: String,
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
        /// Keyless only: the trusted root used.
        #[serde(rename = "trustRoot")]
        pub trust_root: Option<TrustRoot>,
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
        pub format: String,
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
        pub format: String,
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
    assert_eq!(v.formats, ["legacy"]);
    let schema::Claims::Legacy(p) = &v.signatures[0] else { panic!("a legacy payload") };
    assert_eq!(p.critical.kind, "cosign container image signature");
    assert_eq!(p.critical.image.docker_manifest_digest, v.digest);
    // The bundle format (cosign 3): the statement is the claim.
    // see: issue 9
    let out = sigil(d, &["sign", "--format", "bundle", "--key", "sigil.key", "-a", "k=v", &image]);
    assert_code(&out, 0);
    let s: schema::Signed = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!((s.format.as_str(), s.outcome.as_str()), ("bundle", "added"));
    let out = sigil(d, &["verify", "--format", "bundle", "--key", "sigil.pub", "-a", "k=v", &image]);
    let v: schema::Verified = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(v.formats, ["bundle"]);
    let schema::Claims::Bundle(st) = &v.signatures[0] else { panic!("a statement") };
    assert_eq!(st.predicate_type, "https://sigstore.dev/cosign/sign/v1");
    assert_eq!(st.subject[0]["annotations"]["k"], "v");
    let out = sigil(d, &["tree", "--output", "json", &image]);
    let t: schema::Tree = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(t.attachments.len(), 1);
    assert_eq!(t.attachments[0].kind, "sig");
    assert_eq!(t.referrers.len(), 1, "the bundle is a referrer");
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
    rt().block_on(sigil::sign::attach_signature(&store, &digest, garbage, &sig, Default::default())).unwrap();
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

/// A payload with both `critical` and `Critical` reads as one claim to sigil and, through Go's
/// case-insensitive matching (last key wins), as another to cosign and skopeo: it has no single
/// meaning, so it is refused although its signature is good.
// see: issue 8 §6
#[test]
fn payload_with_keys_differing_only_in_case_is_rejected() {
    let (dir, image) = setup();
    let d = dir.path();
    let store = sigil::oci::layout::LayoutStore::open(&d.join("img")).unwrap();
    let digest = stdout(&sigil(d, &["tree", "-o", "json", &image]));
    let digest = serde_json::from_str::<Value>(&digest).unwrap()["digest"].as_str().unwrap().to_owned();
    let other = format!("sha256:{}", "0".repeat(64));
    let claim = |d: &str| {
        format!(
            r#"{{"identity":{{"docker-reference":"oci:img"}},"image":{{"docker-manifest-digest":"{d}"}},"type":"cosign container image signature"}}"#
        )
    };
    let payload = format!(r#"{{"critical":{},"Critical":{},"optional":null}}"#, claim(&digest), claim(&other));
    let pem = std::fs::read(d.join("sigil.key")).unwrap();
    let key =
        sigil::keys::decrypt_private_key(&pem, &sigil::keys::Password::new(PASSWORD.as_bytes().to_vec())).unwrap();
    let sig = key.sign(payload.as_bytes());
    let parsed = sigil::digest::Digest::parse(&digest).unwrap();
    rt().block_on(sigil::sign::attach_signature(&store, &parsed, payload.into_bytes(), &sig, Default::default()))
        .unwrap();
    let out = sigil(d, &["verify", "--key", "sigil.pub", &image]);
    assert_code(&out, 12);
    let err = stderr(&out);
    assert!(err.contains("payload is ambiguous") && err.contains("\"Critical\" appears twice"), "{err}");
    // Annotations are signed JSON too: keys differing only in case there are refused as well.
    let payload = format!(r#"{{"critical":{},"optional":{{"env":"prod","ENV":"dev"}}}}"#, claim(&digest));
    let sig = key.sign(payload.as_bytes());
    rt().block_on(sigil::sign::attach_signature(&store, &parsed, payload.into_bytes(), &sig, Default::default()))
        .unwrap();
    let out = sigil(d, &["verify", "--key", "sigil.pub", "-a", "env=prod", &image]);
    assert_code(&out, 12);
    assert!(stderr(&out).contains("\"ENV\" appears twice"), "{}", stderr(&out));
}

const REF_NAME: &str = "org.opencontainers.image.ref.name";

fn read_index(layout: &std::path::Path) -> Value {
    serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap()
}

fn write_index(layout: &std::path::Path, index: &Value) {
    std::fs::write(layout.join("index.json"), serde_json::to_vec(index).unwrap()).unwrap();
}

/// The `index.json` entry named `name`.
fn entry_named(index: &Value, name: &str) -> Value {
    index["manifests"].as_array().unwrap().iter().find(|m| m["annotations"][REF_NAME] == name).unwrap().clone()
}

/// The blob of the signature manifest of the layout's image.
fn signature_manifest_blob(layout: &std::path::Path) -> std::path::PathBuf {
    let index = read_index(layout);
    let sig = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"][REF_NAME].as_str().is_some_and(|n| n.ends_with(".sig")))
        .unwrap()
        .clone();
    layout.join("blobs/sha256").join(sig["digest"].as_str().unwrap().trim_start_matches("sha256:"))
}

/// Runs sigil, failing the test if it is still running after `limit` (a hang is the defect).
fn sigil_within(cwd: &std::path::Path, args: &[&str], limit: std::time::Duration) -> std::process::Output {
    use std::process::{Command, Stdio};
    let mut c = Command::new(sigil_bin());
    c.args(legacy_unless_named(args));
    isolate(&mut c, cwd, &[("SIGIL_PASSWORD", PASSWORD)]);
    let mut child = c.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let started = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("sigil {args:?} still running after {limit:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

/// Every file under `dir` with its contents (to show nothing was written there).
fn snapshot(dir: &std::path::Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(snapshot(&p));
        } else {
            out.push((p.clone(), std::fs::read(&p).unwrap()));
        }
    }
    out.sort();
    out
}

// see: issue 8 §2
#[test]
fn layout_tag_resolves_as_containers_image() {
    let (dir, image) = setup();
    let d = dir.path();
    let img = d.join("img");
    assert_code(&sigil(d, &["sign", "--key", "sigil.key", &image]), 0);
    let store = sigil::oci::layout::LayoutStore::open(&img).unwrap();
    let unsigned = rt().block_on(push_image(&store, Some("other"), "two", "amd64"));
    let signed_index = read_index(&img);
    let signed = entry_named(&signed_index, "v1");

    // An unsigned entry named v1 ahead of the signed one: containers/image takes the first.
    let mut first = entry_named(&signed_index, "other");
    first["annotations"][REF_NAME] = "v1".into();
    let mut two = signed_index.clone();
    two["manifests"].as_array_mut().unwrap().insert(0, first.clone());
    write_index(&img, &two);
    let out = std::process::Command::new(skopeo_bin())
        .current_dir(d)
        .env("HOME", d)
        .args(["inspect", "--raw", "oci:img:v1"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(sigil::digest::Digest::sha256(&out.stdout), unsigned, "skopeo takes the first entry");
    let out = sigil(d, &["verify", "--key", "sigil.pub", &image]);
    assert_code(&out, 14);
    assert!(stdout(&out).is_empty());
    let err = stderr(&out);
    assert!(err.contains("\"v1\"") && err.contains("twice"), "{err}");
    assert!(err.contains(&unsigned.to_string()) && err.contains(signed["digest"].as_str().unwrap()), "{err}");
    // sign refuses too, rather than signing either.
    assert_ne!(code(&sigil(d, &["sign", "--key", "sigil.key", &image])), 0);

    // An entry of the name that is not a manifest or index is skipped, as containers/image does.
    two["manifests"][0]["mediaType"] = "application/vnd.oci.image.config.v1+json".into();
    write_index(&img, &two);
    assert_code(&sigil(d, &["verify", "--key", "sigil.pub", &image]), 0);

    // A key Go reads case-insensitively: "Annotations" names the unsigned entry v1 for skopeo.
    let mut spelled = signed_index.clone();
    let mut hidden = entry_named(&signed_index, "other");
    hidden.as_object_mut().unwrap().remove("annotations");
    hidden["Annotations"] = serde_json::json!({ REF_NAME: "v1" });
    spelled["manifests"].as_array_mut().unwrap().insert(0, hidden);
    write_index(&img, &spelled);
    let out = sigil(d, &["verify", "--key", "sigil.pub", &image]);
    assert_code(&out, 14);
    assert!(stderr(&out).contains("\"Annotations\""), "{}", stderr(&out));

    // The normal case; without a tag, two images are one too many.
    write_index(&img, &signed_index);
    assert_code(&sigil(d, &["verify", "--key", "sigil.pub", &image]), 0);
    let out = sigil(d, &["verify", "--key", "sigil.pub", "oci:img"]);
    assert_code(&out, 14);
    assert!(stderr(&out).contains("no tag was given"), "{}", stderr(&out));
}

// see: issue 8 §4
#[test]
fn layout_fifo_blob_does_not_block_verify() {
    let (dir, image) = setup();
    let d = dir.path();
    assert_code(&sigil(d, &["sign", "--key", "sigil.key", &image]), 0);
    let blob = signature_manifest_blob(&d.join("img"));
    std::fs::remove_file(&blob).unwrap();
    assert!(std::process::Command::new("mkfifo").arg(&blob).status().unwrap().success());
    let out = sigil_within(d, &["verify", "--key", "sigil.pub", &image], std::time::Duration::from_secs(20));
    assert_code(&out, 14);
    assert!(stdout(&out).is_empty());
    assert!(stderr(&out).contains("is a FIFO, not a regular file"), "{}", stderr(&out));
}

// see: issue 8 §4
#[test]
fn layout_symlink_lock_file_is_refused() {
    let (dir, image) = setup();
    let d = dir.path();
    let victim = d.join("victim");
    // Writing the image left a lock file; a hostile layout has a link in its place.
    let lock = d.join("img/.index.json.lock");
    std::fs::remove_file(&lock).unwrap();
    std::os::unix::fs::symlink(&victim, &lock).unwrap();
    let out = sigil(d, &["sign", "--key", "sigil.key", &image]);
    assert_ne!(code(&out), 0);
    assert!(stderr(&out).contains(".index.json.lock is a symbolic link"), "{}", stderr(&out));
    assert!(std::fs::symlink_metadata(&victim).is_err(), "sign created a file through the link");
    // Pointing at an existing file outside: not followed either, the file is untouched.
    std::fs::write(&victim, b"precious").unwrap();
    assert_ne!(code(&sigil(d, &["sign", "--key", "sigil.key", &image])), 0);
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    // The same for the lock signers hold across a tag's read-merge-write.
    std::fs::remove_file(&lock).unwrap();
    let tags_lock = d.join("img/.tags.lock");
    let _ = std::fs::remove_file(&tags_lock);
    let victim2 = d.join("victim2");
    std::os::unix::fs::symlink(&victim2, &tags_lock).unwrap();
    let out = sigil(d, &["sign", "--key", "sigil.key", &image]);
    assert_ne!(code(&out), 0);
    assert!(stderr(&out).contains(".tags.lock is a symbolic link"), "{}", stderr(&out));
    assert!(std::fs::symlink_metadata(&victim2).is_err(), "sign created a file through the link");
}

// see: issue 8 §4
#[test]
fn layout_symlinked_blob_dir_outside_is_refused() {
    let (dir, image) = setup();
    let d = dir.path();
    let img = d.join("img");
    for (link, target) in [("blobs/sha256", "outside-sha256"), ("blobs", "outside-blobs")] {
        // The layout's directory moved out and linked back in.
        std::fs::rename(img.join(link), d.join(target)).unwrap();
        std::os::unix::fs::symlink(d.join(target), img.join(link)).unwrap();
        let before = snapshot(&d.join(target));
        let out = sigil(d, &["sign", "--key", "sigil.key", &image]);
        assert_ne!(code(&out), 0);
        assert!(stderr(&out).contains("refusing the OCI layout"), "{}", stderr(&out));
        assert!(stderr(&out).contains("symbolic link leading outside the layout"), "{}", stderr(&out));
        assert_eq!(snapshot(&d.join(target)), before, "sign wrote outside the layout through {link}");
        let out = sigil(d, &["verify", "--key", "sigil.pub", &image]);
        assert_code(&out, 14);
        assert!(stderr(&out).contains("outside the layout"), "{}", stderr(&out));
        // Put it back.
        std::fs::remove_file(img.join(link)).unwrap();
        std::fs::rename(d.join(target), img.join(link)).unwrap();
    }
    // A layout created for signatures never creates its directories through a link.
    std::fs::create_dir_all(d.join("sigs")).unwrap();
    std::fs::create_dir_all(d.join("elsewhere")).unwrap();
    std::os::unix::fs::symlink(d.join("elsewhere"), d.join("sigs/blobs")).unwrap();
    let out = sigil(d, &["sign", "--key", "sigil.key", "--signature-repository", "oci:sigs", &image]);
    assert_ne!(code(&out), 0);
    assert!(stderr(&out).contains("outside the layout"), "{}", stderr(&out));
    assert!(snapshot(&d.join("elsewhere")).is_empty() && !d.join("elsewhere/sha256").exists());
    assert_code(&sigil(d, &["verify", "--key", "sigil.pub", &image]), 10);
}

/// A lock on `.index.json.lock` or `.tags.lock` held by another process (a stuck writer)
/// makes `sign` fail after `--timeout`, naming the lock, rather than wait forever.
// see: issue 8 §4
#[test]
fn layout_lock_held_elsewhere_fails_within_the_timeout() {
    let (dir, image) = setup();
    let d = dir.path();
    for name in [".index.json.lock", ".tags.lock"] {
        let held = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(d.join("img").join(name));
        let held = held.unwrap();
        held.lock().unwrap();
        let started = std::time::Instant::now();
        let out = sigil_within(
            d,
            &["sign", "--timeout", "2", "--key", "sigil.key", &image],
            std::time::Duration::from_secs(20),
        );
        assert_ne!(code(&out), 0);
        assert!(stderr(&out).contains(&format!("{name} stayed locked by another writer")), "{}", stderr(&out));
        assert!(started.elapsed() < std::time::Duration::from_secs(15), "{name}: {:?}", started.elapsed());
        drop(held);
    }
    // Released: signing works again.
    assert_code(&sigil(d, &["sign", "--key", "sigil.key", &image]), 0);
}
