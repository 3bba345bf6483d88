//! Walks the self-describing vectors under testdata/ and checks each one's expectation.
//! A vector file is `key: value` header lines, a `---` line, then the data.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use sigil::attachments::signature_manifest;
use sigil::digest::Digest;
use sigil::keys::{self, KeyError, Password, PublicKey};
use sigil::oci::manifest::Manifest;
use sigil::payload::{Annotations, SimpleSigning};
use sigil::reference::ImageRef;
use sigil::verify::check_payload;

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata")
}

fn read_vector(path: &Path) -> (BTreeMap<String, String>, String) {
    let text = std::fs::read_to_string(path).unwrap();
    let (head, body) = text.split_once("\n---\n").unwrap_or_else(|| panic!("{}: no --- line", path.display()));
    let header = head
        .lines()
        .map(|l| {
            let (k, v) = l.split_once(": ").unwrap_or_else(|| panic!("{}: bad header line {l:?}", path.display()));
            (k.to_owned(), v.to_owned())
        })
        .collect();
    (header, body.to_owned())
}

fn vectors(dir: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(testdata().join(dir))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "vector"))
        .collect();
    v.sort();
    assert!(!v.is_empty(), "no vectors in testdata/{dir}");
    v
}

fn error_kind(e: &KeyError) -> &'static str {
    match e {
        KeyError::Decrypt => "decrypt",
        KeyError::Unsupported(_) => "unsupported",
        KeyError::NotPem(_) | KeyError::TooLarge => "not-pem",
        KeyError::Malformed(_) => "malformed",
        _ => "other",
    }
}

#[test]
fn encrypted_key_vectors() {
    for path in vectors("keys") {
        let (h, body) = read_vector(&path);
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let password = Password::new(h["password"].as_bytes().to_vec());
        let got = keys::decrypt_private_key(body.as_bytes(), &password);
        match (h["expect"].as_str(), got) {
            ("ok", Ok(key)) => {
                if let Some(p) = h.get("public-key") {
                    let pem = std::fs::read(testdata().join("keys").join(p)).unwrap();
                    assert_eq!(key.public_key(), PublicKey::from_pem(&pem).unwrap(), "{name}: public key");
                    assert_eq!(
                        key.public_key().to_pem().unwrap().as_bytes(),
                        pem.as_slice(),
                        "{name}: PEM bytes as cosign writes them"
                    );
                }
            }
            (want, Err(e)) if want.strip_prefix("error:") == Some(error_kind(&e)) => {
                // Parameter problems are found without the password (before scrypt runs).
                if want == "error:unsupported" || want == "error:malformed" || want == "error:not-pem" {
                    assert!(keys::check_encrypted_key(body.as_bytes()).is_err(), "{name}: check without password");
                }
            }
            (want, got) => panic!("{name}: expected {want}, got {:?}", got.map(|k| k.algorithm())),
        }
    }
}

#[test]
fn reference_vectors() {
    let (_, body) = read_vector(&testdata().join("references/references.vector"));
    for line in body.lines().filter(|l| !l.trim().is_empty()) {
        if let Some(rest) = line.strip_prefix("ok ") {
            let (input, want) = rest.split_once(" => ").unwrap();
            let got = ImageRef::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(got.to_string(), want, "{input}");
        } else if let Some(input) = line.strip_prefix("err ") {
            assert!(ImageRef::parse(input).is_err(), "{input} should be refused");
        } else {
            panic!("bad line {line:?}");
        }
    }
}

#[test]
fn challenge_vectors() {
    use sigil::oci::challenge::Challenge;
    let (_, body) = read_vector(&testdata().join("challenges/challenges.vector"));
    let opt = |o: &Option<String>| o.clone().unwrap_or_else(|| "-".into());
    for line in body.lines().filter(|l| !l.trim().is_empty()) {
        let (expect, rest) = line.split_once(' ').unwrap();
        match expect {
            "bearer" => {
                let (input, want) = rest.split_once(" => ").unwrap();
                let Ok(Challenge::Bearer(b)) = Challenge::parse([input]) else { panic!("{input}: not Bearer") };
                assert_eq!(format!("{} | {} | {}", b.realm, opt(&b.service), opt(&b.scope)), want, "{input}");
            }
            "basic" => assert_eq!(Challenge::parse([rest]), Ok(Challenge::Basic), "{rest}"),
            "err" => assert!(Challenge::parse([rest]).is_err(), "{rest} should be refused"),
            _ => panic!("bad line {line:?}"),
        }
    }
}

#[test]
fn payload_vectors() {
    let (_, body) = read_vector(&testdata().join("payloads/payloads.vector"));
    for line in body.lines().filter(|l| !l.trim().is_empty()) {
        let (expect, json) = line.split_once(' ').unwrap();
        let got = SimpleSigning::parse(json.as_bytes());
        assert_eq!(got.is_ok(), expect == "ok", "{line}: {got:?}");
    }
}

/// Signatures cosign 2.5.0 wrote verify here, and sigil rebuilds cosign's exact bytes.
#[test]
fn cosign_written_signatures() {
    let dir = testdata().join("cosign-signatures");
    let image = Digest::parse(std::fs::read_to_string(dir.join("image-digest")).unwrap().trim()).unwrap();
    let manifest_bytes = std::fs::read(dir.join("manifest.json")).unwrap();
    let Manifest::Image(m) = Manifest::parse(&manifest_bytes).unwrap() else { panic!("not an image manifest") };
    let keys: Vec<PublicKey> = ["cosign-p256.pub", "cosign-ed25519.pub"]
        .iter()
        .map(|k| PublicKey::from_pem(&std::fs::read(dir.join(k)).unwrap()).unwrap())
        .collect();
    let none = Annotations::new();
    for (layer, key) in m.layers.iter().zip(&keys) {
        let payload = std::fs::read(dir.join(format!("payload-{}.json", layer.digest.hex()))).unwrap();
        let sig = base64::Engine::decode(
            &base64::engine::general_purpose::STANDARD,
            layer.annotation(sigil::attachments::SIGNATURE_ANNOTATION).unwrap(),
        )
        .unwrap();
        let p = check_payload(&payload, &sig, &image, key, &none).unwrap();
        assert_eq!(p.manifest_digest, image);
        // Same payload bytes as sigil would write for the same claims.
        let ann: Annotations = p.optional.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned())).collect();
        assert_eq!(SimpleSigning::new(p.docker_reference.clone(), image.clone(), &ann).to_bytes(), payload);
        // The other key must not verify it.
        let other = keys.iter().find(|k| *k != key).unwrap();
        assert!(check_payload(&payload, &sig, &image, other, &none).is_err());
    }
    let (rebuilt, config) = signature_manifest(m.layers.clone());
    assert_eq!(config, std::fs::read(dir.join("config.json")).unwrap(), "config bytes");
    assert_eq!(rebuilt, manifest_bytes, "manifest bytes");
}

/// An attestation cosign 2.5.0 wrote verifies here, and sigil's writer rebuilds its manifest.
#[test]
fn cosign_written_attestation() {
    use sigil::policy::SlsaExpectations;
    use sigil::verify::attestation::{check_envelope, AttestationPolicy};
    let dir = testdata().join("cosign-attestations");
    let image = Digest::parse(std::fs::read_to_string(dir.join("image-digest")).unwrap().trim()).unwrap();
    let envelope = std::fs::read(dir.join("envelope.json")).unwrap();
    let key = PublicKey::from_pem(&std::fs::read(dir.join("cosign-p256.pub")).unwrap()).unwrap();
    let slsa = SlsaExpectations {
        builder_id: Some("https://example.com/builder".into()),
        source_branch: Some("main".into()),
        ..Default::default()
    };
    let none = std::collections::BTreeMap::new();
    let policy = AttestationPolicy {
        signer: sigil::verify::ImageSigner::Key(&key),
        predicate_type: Some("https://slsa.dev/provenance/v1"),
        max_blob_bytes: 1 << 20,
        slsa: &slsa,
        checks: &[],
        formats: sigil::attachments::Formats::Any,
    };
    let (statement, predicate_type, _) = check_envelope(&envelope, &none, &image, &policy).unwrap();
    assert_eq!(predicate_type, "https://slsa.dev/provenance/v1");
    assert_eq!(statement["_type"], "https://in-toto.io/Statement/v0.1");
    // Another digest, another type, a changed payload: refused.
    assert!(check_envelope(&envelope, &none, &Digest::sha256(b"x"), &policy).is_err());
    let other_type = AttestationPolicy { predicate_type: Some("https://cyclonedx.org/bom"), ..policy };
    assert!(check_envelope(&envelope, &none, &image, &other_type).is_err());
    let mut e: serde_json::Value = serde_json::from_slice(&envelope).unwrap();
    e["payloadType"] = serde_json::Value::String("text/plain".into());
    assert!(check_envelope(&serde_json::to_vec(&e).unwrap(), &none, &image, &policy).is_err());
    // The .att manifest is what sigil writes for that layer.
    let manifest_bytes = std::fs::read(dir.join("manifest.json")).unwrap();
    let Manifest::Image(m) = Manifest::parse(&manifest_bytes).unwrap() else { panic!("not an image manifest") };
    assert_eq!(signature_manifest(m.layers).0, manifest_bytes);
}
