//! Entry points shared by the cargo-fuzz targets (`fuzz/`) and the corpus smoke test
//! (`tests/fuzz_smoke.rs`). Each takes arbitrary bytes and must never panic; the round-trip
//! assertions are properties, not input checks.
#![doc(hidden)]

use crate::keys;
use crate::oci::manifest::Manifest;
use crate::payload::SimpleSigning;
use crate::reference::ImageRef;

/// Encrypted and unencrypted private-key parsing (no scrypt: that needs the password).
pub fn encrypted_key(data: &[u8]) {
    let _ = keys::check_encrypted_key(data);
    let _ = keys::parse_unencrypted_private_key(data);
}

/// PKIX public keys, PEM and DER.
pub fn public_key(data: &[u8]) {
    let _ = keys::PublicKey::from_pem(data);
    let _ = keys::PublicKey::from_der(data);
}

/// Simple-signing payloads: what parses serialises and parses back to the same value. Also
/// the ambiguous-key check every signed JSON document goes through: what it accepts keeps
/// being accepted once re-serialised.
pub fn payload(data: &[u8]) {
    if crate::json::reject_ambiguous_keys(data).is_ok() {
        if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) {
            let again = serde_json::to_vec(&v).unwrap_or_default();
            assert!(crate::json::reject_ambiguous_keys(&again).is_ok(), "ambiguous-key check round trip");
        }
    }
    if let Ok(p) = SimpleSigning::parse(data) {
        let again = SimpleSigning::parse(&p.to_bytes());
        assert!(matches!(again, Ok(ref q) if *q == p), "payload round trip");
    }
}

/// OCI manifests and indexes, and the Go field-spelling check an OCI layout's `index.json`
/// gets (on a schema of the same shape).
pub fn manifest(data: &[u8]) {
    use crate::json::GoStruct;
    static ENTRY: GoStruct = GoStruct { fields: &["mediaType", "digest", "size", "annotations"], arrays: &[] };
    static INDEX: GoStruct =
        GoStruct { fields: &["schemaVersion", "mediaType", "manifests"], arrays: &[("manifests", &ENTRY)] };
    let _ = crate::json::misread_fields(data, &INDEX);
    if let Ok(Manifest::Index(index)) = Manifest::parse(data) {
        // A layout's index.json as `copy` reads it: cosign save's marks, and those sigil adds.
        let _ = crate::attachments::saved::read(&index);
        if let Ok(Some(marks)) = crate::attachments::saved::marks(&index) {
            assert!(marks.keys().all(|d| index.manifests.iter().any(|m| m.digest == *d)), "a mark for no entry");
        }
    }
}

/// `copy --platform` values: a parsed platform prints as it was given.
pub fn platform(data: &[u8]) {
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(p) = crate::copy::Platform::parse(s) {
            assert_eq!(p.to_string(), s, "platform round trip");
        }
    }
}

/// Image references: the normalised form parses to the same reference.
pub fn reference(data: &[u8]) {
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(r) = ImageRef::parse(s) {
            let again = ImageRef::parse(&r.to_string());
            assert!(matches!(again, Ok(ref q) if *q == r), "reference round trip: {s:?}");
        }
    }
}

/// Registry `WWW-Authenticate` challenges and token answers: a Bearer realm is always an
/// absolute http(s) URL, and a token always a valid header value.
pub fn challenge(data: &[u8]) {
    use crate::oci::challenge::{Challenge, Token};
    if let Ok(s) = std::str::from_utf8(data) {
        if let Ok(Challenge::Bearer(b)) = Challenge::parse([s]) {
            assert!(matches!(b.realm.scheme(), "http" | "https") && b.realm.host_str().is_some(), "realm {}", b.realm);
        }
    }
    if let Ok(t) = Token::from_response(data) {
        assert!(reqwest::header::HeaderValue::from_str(&format!("Bearer {}", t.as_str())).is_ok(), "token header");
    }
}

/// Sigstore bundles: parsing, sigil's structural checks and the whole verification against
/// the embedded trusted root (every path must end in a verdict, never a panic).
pub fn bundle(data: &[u8]) {
    use crate::verify::bundle::{verify_bundle, Artifact, Signer};
    let Ok(trust) = crate::trust::Trust::embedded() else { return };
    let digest = crate::digest::Digest::sha256(b"");
    let id = crate::identity::Matcher::Exact("x".into());
    let _ = verify_bundle(data, Artifact::Sha256(&digest), &Signer::Identity { identity: &id, issuer: &id }, &trust);
    let _ = verify_bundle(
        data,
        Artifact::Bytes(b""),
        &Signer::Key("-----BEGIN PUBLIC KEY-----\n-----END PUBLIC KEY-----\n"),
        &trust,
    );
}

/// Transparency-log checkpoints (C2SP signed notes).
pub fn checkpoint(data: &[u8]) {
    if let Ok(s) = std::str::from_utf8(data) {
        let _ = sigstore_verify::types::checkpoint::Checkpoint::from_text(s);
    }
}

/// RFC 6962 inclusion proofs: arbitrary indexes, sizes and paths must be refused cleanly.
pub fn merkle(data: &[u8]) {
    use sigstore_verify::types::Sha256Hash;
    if data.len() < 16 {
        return;
    }
    let index = u64::from_le_bytes(data[0..8].try_into().unwrap_or_default());
    let size = u64::from_le_bytes(data[8..16].try_into().unwrap_or_default());
    let hashes: Vec<Sha256Hash> =
        data[16..].chunks_exact(32).filter_map(|c| <[u8; 32]>::try_from(c).ok().map(Sha256Hash::new)).collect();
    let (Some(leaf), Some(root)) = (hashes.first(), hashes.last()) else { return };
    let path = hashes.get(1..hashes.len().saturating_sub(1)).unwrap_or(&[]);
    let _ = sigstore_merkle::verify_inclusion_proof(leaf, index, size, path, root);
}

/// DSSE envelopes, in-toto statements and predicate checks.
pub fn attestation(data: &[u8]) {
    if let Ok(env) = crate::dsse::Envelope::parse(data) {
        if let Ok(payload) = env.payload_bytes() {
            let _ = crate::intoto::Statement::parse(&payload);
        }
        let _ = crate::dsse::Envelope::parse(&env.to_bytes());
    }
    let _ = crate::intoto::Statement::parse(data);
    // Every known type's pre-signing checks and auditor summary (and a versioned OpenVEX URI).
    let predicate = serde_json::from_slice::<serde_json::Value>(data).ok();
    let predicate = predicate.as_ref().map(|v| v.get("predicate").unwrap_or(v));
    let versioned = format!("{}/v0.2.0", crate::predicates::OPENVEX);
    let uris = crate::predicates::KNOWN.iter().map(|k| k.uri).chain([versioned.as_str()]);
    for t in uris {
        let _ = crate::predicates::check_predicate(t, data);
        if let Some(p) = predicate {
            let _ = crate::report::summarize(t, p);
        }
    }
    for mt in ["application/spdx+json", "application/vnd.cyclonedx+json", "text/spdx"] {
        let _ = crate::report::summarize_sbom(mt, data);
    }
    // Keyless attestation material: the data as the Rekor bundle annotation and as the envelope.
    if let Ok(text) = std::str::from_utf8(data) {
        let ann = [
            (crate::verify::cosign_keyless::CERTIFICATE_ANNOTATION.to_owned(), text.to_owned()),
            (crate::verify::cosign_keyless::BUNDLE_ANNOTATION.to_owned(), text.to_owned()),
        ]
        .into_iter()
        .collect();
        let _ = crate::verify::cosign_keyless::dsse_bundle_from_annotations(
            &ann,
            data,
            crate::verify::cosign_keyless::SignedBy::Certificate,
        );
    }
    for name in crate::predicates::names() {
        if let Ok(t) = crate::predicates::PredicateType::parse(name) {
            if t.input != crate::predicates::PredicateInput::Json {
                let _ = crate::predicates::build_predicate(&t, data, "2026-01-01T00:00:00Z");
            }
        }
    }
}

/// Sigstore bundles attached to images (cosign 3): the pure image checks with a key and
/// keyless, the referrers `Link` header, and a referrers page read as an index. Every path
/// ends in a verdict, never a panic.
pub fn image_bundle(data: &[u8]) {
    use crate::verify::image_bundle::{check_image_bundle, Expect};
    use crate::verify::ImageSigner;
    let digest = crate::digest::Digest::sha256(b"");
    let key = keys::PrivateKey::generate(keys::KeyAlgorithm::Ed25519).public_key();
    let none = crate::payload::Annotations::new();
    let _ = check_image_bundle(data, &digest, &ImageSigner::Key(&key), &Expect::Signature { annotations: &none });
    if let Ok(trust) = crate::trust::Trust::embedded() {
        let id = crate::identity::Matcher::Exact("x".into());
        let signer = ImageSigner::Keyless { identity: &id, issuer: &id, trust: &trust };
        let _ = check_image_bundle(data, &digest, &signer, &Expect::Signature { annotations: &none });
    }
    if let Ok(s) = std::str::from_utf8(data) {
        if let Some(target) = crate::oci::registry::parse_next_link(s) {
            assert!(s.contains(&target), "a link target comes from the header");
        }
    }
    let _ = Manifest::parse(data);
}

/// Sigstore signing configurations: parsing, and selection at a fixed time (never a panic,
/// whatever the services and selectors say).
pub fn signing_config(data: &[u8]) {
    use crate::signing_config::{select, select_one, SigningConfig};
    let Ok(c) = SigningConfig::parse(data) else { return };
    let Ok(now) = "2026-01-01T00:00:00Z".parse::<jiff::Timestamp>() else { return };
    let _ = select_one("CA", &c.ca, &[1], now);
    let _ = select("Rekor", &c.rekor, c.rekor_selector, &[1, 2], now, &mut |n| n.saturating_sub(1));
    let _ = select("TSA", &c.tsa, c.tsa_selector, &[1], now, &mut |_| 0);
}

/// OIDC identity tokens: parsing and the checks before any request.
pub fn identity_token(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(t) = crate::oidc::IdentityToken::parse(text) {
        let _ = t.check(1_800_000_000, crate::oidc::SIGSTORE_AUDIENCE);
        let _ = t.principal();
    }
}

/// What Sigstore's services answer, by the first byte: 0 Fulcio, 1 Rekor v2, 2 Rekor v1,
/// 3 a timestamp authority; each checked against a fixed request.
pub fn service_answers(data: &[u8]) {
    use crate::keys::{KeyAlgorithm, PrivateKey};
    use crate::rekor::{Proposal, Verifier};
    let Some((&which, answer)) = data.split_first() else { return };
    let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256);
    let proposal = Proposal::HashedRekord {
        digest: [7; 32],
        signature: vec![1, 2, 3],
        verifier: Verifier::Certificate(vec![0x30, 0x00]),
    };
    match which % 4 {
        0 => {
            let _ = crate::fulcio::parse_answer(answer, &key.public_key());
        }
        1 => {
            let _ = crate::rekor::parse_v2(answer, &proposal);
        }
        2 => {
            let _ = crate::rekor::parse_v1(answer, &proposal);
        }
        _ => {
            let _ = crate::tsa::Request::for_signature(b"sig").check_answer(answer);
        }
    }
}

/// Image policies (no file access: keys inline only), image patterns and vulnerability
/// reports: parsing never panics, and a parsed policy answers which rule applies.
pub fn policy(data: &[u8]) {
    if let Ok(p) = crate::policy::parse(data, std::sync::Arc::new(crate::policy::file::NoFiles)) {
        for name in ["docker.io/library/nginx", "registry.example.com/prod/app", "localhost:5000/a/b/c"] {
            let _ = p.rule_for(name);
        }
        let _ = p.needs_default_trust();
    }
    if let Ok(text) = std::str::from_utf8(data) {
        let (pattern, name) = text.split_once('\n').unwrap_or((text, "docker.io/library/nginx"));
        if let Ok(p) = crate::policy::ImagePattern::parse(pattern) {
            let _ = p.matches(name);
        }
    }
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) {
        let _ = crate::vulns::findings(crate::vulns::report_of(&v));
    }
}

/// Kubernetes manifests: reading (YAML or JSON, lists, duplicate keys), the images of each
/// object, and pinning every image (and a bogus pointer). What pins reads back pinned.
pub fn workloads(data: &[u8]) {
    use crate::workloads::{images_of, parse_manifests, pin, Pin};
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) {
        let _ = images_of(&v);
    }
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = pin(text, &[Pin { document: 1, pointer: "/spec/containers/0/image".into(), image: "x/y@sha256:0".into() }]);
    let Ok(manifests) = parse_manifests(text) else { return };
    let pinned = "fuzz.example/app@sha256:0000000000000000000000000000000000000000000000000000000000000000";
    let pins: Vec<Pin> = manifests
        .iter()
        .flat_map(|m| {
            m.images.iter().map(|i| Pin { document: m.document, pointer: i.pointer.clone(), image: pinned.into() })
        })
        .collect();
    if let Ok(out) = pin(text, &pins) {
        let again = parse_manifests(&out);
        let images = again.iter().flatten().flat_map(|m| &m.images);
        assert!(
            images.clone().count() == pins.len() && images.into_iter().all(|i| i.image == pinned),
            "pin round trip"
        );
    }
}

/// A judge for the admission fuzz target: every image passes, with the reference's digest or
/// a made-up one; no registry.
struct PassAll(crate::digest::Digest);

impl crate::gate::Judge for PassAll {
    fn policy_digest(&self) -> &crate::digest::Digest {
        &self.0
    }
    async fn resolve(
        &self,
        image: &crate::reference::RegistryRef,
    ) -> Result<crate::digest::Digest, crate::gate::ResolveError> {
        Ok(image
            .selector()
            .digest()
            .cloned()
            .unwrap_or_else(|| crate::digest::Digest::sha256(image.to_string().as_bytes())))
    }
    async fn judge(
        &self,
        image: &crate::reference::RegistryRef,
        digest: &crate::digest::Digest,
    ) -> crate::gate::Decision {
        crate::gate::Decision {
            outcome: crate::gate::Outcome::Passed,
            digest: Some(digest.clone()),
            ..crate::gate::Decision::could_not_check(
                &image.to_string(),
                Some("fuzz".into()),
                crate::policy::Mode::Enforce,
                String::new(),
            )
        }
    }
    fn without_registry(&self, _: &crate::reference::RegistryRef) -> Option<crate::gate::Decision> {
        None
    }
    fn unresolved(
        &self,
        image: &crate::reference::RegistryRef,
        e: &crate::gate::ResolveError,
    ) -> crate::gate::Decision {
        crate::gate::Decision::could_not_check(&image.to_string(), None, crate::policy::Mode::Enforce, e.to_string())
    }
}

/// AdmissionReview bodies, answered on both endpoints by a judge that passes everything:
/// never a panic, and an answer (when there is one) serialises with the request's uid.
pub fn admission_review(data: &[u8]) {
    use crate::gate::admission::{answer, Deadline, Endpoint};
    use crate::gate::cache::{CacheConfig, Verdicts};
    use crate::gate::metrics::Metrics;
    use std::time::Duration;
    let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_time().build() else { return };
    let metrics = std::sync::Arc::new(Metrics::new());
    let config = CacheConfig {
        verdicts: 16,
        verdict_ttl: Duration::from_secs(60),
        denied_ttl: Duration::from_secs(1),
        digests: 16,
        digest_ttl: Duration::from_secs(60),
    };
    let verdicts = Verdicts::new(config, metrics.clone());
    let judge = PassAll(crate::digest::Digest::sha256(b"fuzz"));
    for endpoint in [Endpoint::Validate, Endpoint::Mutate] {
        let answered = rt.block_on(answer(
            &verdicts,
            &judge,
            &metrics,
            endpoint,
            data,
            Deadline::after(Duration::from_secs(5)),
            None,
        ));
        if let Ok(a) = answered {
            let _ = a.to_json();
        }
    }
}
