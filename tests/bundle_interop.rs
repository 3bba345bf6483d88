//! Sigstore bundles on images across sigil and cosign 3.1.1 (Debian unstable, `.tools/cosign3`),
//! both ways, key-based, on both registry kinds the harness starts:
//! - `distribution`: Debian's docker-registry (CNCF distribution 2.8), no referrers API: bundle
//!   referrers are listed in the OCI tag schema (an index tagged `sha256-<hex>`);
//! - `referrers_api`: refreg, go-containerregistry's registry with the OCI 1.1 referrers API.
//!
//! cosign 3 runs offline as `testdata/cosign3/README.md` records: a signing config without
//! services and an empty trusted root (both recorded in `testdata/cosign3/common`),
//! `--insecure-ignore-tlog` to verify. cosign 2.5 writes the legacy `.sig` tag where both
//! formats meet. Keyless bundles come from the sigstore-conformance vectors (production
//! material). `sigil sign`/`attest` are given `--format bundle` explicitly (tests/common adds
//! `--format=legacy` otherwise).

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use common::*;
use serde_json::{json, Value};
use sigil::attachments::{referrers::list_referrers, BUNDLE_V03};
use sigil::digest::Digest;
use sigil::oci::manifest::{referrers_tag, EMPTY_JSON, OCI_EMPTY, OCI_INDEX, OCI_MANIFEST};
use sigil::oci::{Backend, ManifestRef, Store};

const HTTP: &str = "--allow-http-registry";
const SIGN_V1: &str = "https://sigstore.dev/cosign/sign/v1";

const SPDX: &str = r#"{"spdxVersion":"SPDX-2.3","dataLicense":"CC0-1.0","SPDXID":"SPDXRef-DOCUMENT","name":"app","documentNamespace":"https://example.com/spdx/app-1","creationInfo":{"created":"2025-01-01T00:00:00Z","creators":["Tool: sigil-tests"]},"packages":[{"name":"app","SPDXID":"SPDXRef-Package-app","versionInfo":"1.0.0","downloadLocation":"NOASSERTION"}]}"#;
const CYCLONEDX: &str = r#"{"bomFormat":"CycloneDX","specVersion":"1.5","version":1,"metadata":{"component":{"type":"container","name":"app"}},"components":[{"type":"library","name":"left-pad","version":"1.3.0","purl":"pkg:npm/left-pad@1.3.0"}]}"#;
const VULN: &str = r#"{"invocation":{"parameters":null,"uri":"","event_id":"","builder.id":""},"scanner":{"uri":"pkg:github/aquasecurity/trivy","version":"0.57.0","db":{"uri":"","version":""},"result":{"Results":[{"Vulnerabilities":[{"VulnerabilityID":"CVE-1","Severity":"CRITICAL"}]}]}},"metadata":{"scanStartedOn":"2026-11-01T10:08:00Z","scanFinishedOn":"2026-11-01T10:09:00Z"}}"#;

/// The attestation types of the issue: (`--type`, predicate type URI, predicate file, a JSON
/// pointer into the predicate and the value both tools must keep there). The SLSA v1 predicate
/// is the one recorded with cosign 3 (`testdata/cosign3/common/predicate-slsa1.json`).
const TYPES: [(&str, &str, &str, &str, &str); 4] = [
    (
        "slsaprovenance1",
        "https://slsa.dev/provenance/v1",
        "slsa1.json",
        "/runDetails/builder/id",
        "https://sigil.example/builder/v1",
    ),
    ("spdxjson", "https://spdx.dev/Document", "spdx.json", "/documentNamespace", "https://example.com/spdx/app-1"),
    ("cyclonedx", "https://cyclonedx.org/bom", "cyclonedx.json", "/components/0/purl", "pkg:npm/left-pad@1.3.0"),
    (
        "vuln",
        "https://cosign.sigstore.dev/attestation/vuln/v1",
        "vuln.json",
        "/scanner/uri",
        "pkg:github/aquasecurity/trivy",
    ),
];

/// Each scenario runs once per registry kind, as its own test: `NAME::distribution` and
/// `NAME::referrers_api`.
macro_rules! on_both_registries {
    ($($(#[$meta:meta])* fn $name:ident($kind:ident) $body:block)*) => {$(
        $(#[$meta])*
        fn $name($kind: RegistryKind) $body
        mod $name {
            /// Debian's docker-registry: no referrers API, the tag schema.
            #[test]
            fn distribution() {
                super::$name(super::RegistryKind::Distribution)
            }
            /// refreg (go-containerregistry's registry): the OCI 1.1 referrers API.
            #[test]
            fn referrers_api() {
                super::$name(super::RegistryKind::Referrers)
            }
        }
    )*};
}

fn cosign3_common(file: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/cosign3/common").join(file).display().to_string()
}

/// A registry of one kind, key pairs `s` and `other` (sigil-generated, password
/// `common::PASSWORD`, read by both tools), the predicates, in a temporary folder.
struct Setup {
    kind: RegistryKind,
    reg: Registry,
    dir: tempfile::TempDir,
    signing_config: String,
    root: String,
}

impl Setup {
    fn new(kind: RegistryKind) -> Self {
        let reg = Registry::start_kind(kind);
        let dir = tempfile::tempdir().unwrap();
        for prefix in ["s", "other"] {
            assert_code(&sigil(dir.path(), &["generate-key-pair", "--output-key-prefix", prefix]), 0);
        }
        let slsa1 = std::fs::read_to_string(cosign3_common("predicate-slsa1.json")).unwrap();
        for (name, body) in
            [("slsa1.json", &slsa1[..]), ("spdx.json", SPDX), ("cyclonedx.json", CYCLONEDX), ("vuln.json", VULN)]
        {
            std::fs::write(dir.path().join(name), body).unwrap();
        }
        Setup {
            kind,
            reg,
            dir,
            signing_config: cosign3_common("signing-config.json"),
            root: cosign3_common("trusted-root.json"),
        }
    }

    fn d(&self) -> &Path {
        self.dir.path()
    }

    fn store(&self, repo: &str) -> Backend {
        self.reg.store(repo)
    }

    /// Pushes a fresh image into `repo`; returns its digest.
    fn push(&self, repo: &str, seed: &str) -> Digest {
        rt().block_on(push_image(&self.store(repo), Some(seed), seed, "amd64"))
    }

    fn image(&self, repo: &str, digest: &Digest) -> String {
        format!("{}/{repo}@{digest}", self.reg.host())
    }

    fn cosign3_sign(&self, key: &str, image: &str) -> Output {
        let args = ["sign", "--key", key, "--signing-config", &self.signing_config, "--trusted-root", &self.root];
        cosign3(self.d(), &[&args[..], &[HTTP, "--yes", image]].concat())
    }

    fn cosign3_attest(&self, key: &str, kind: &str, predicate: &str, image: &str) -> Output {
        let args = ["attest", "--key", key, "--signing-config", &self.signing_config, "--trusted-root", &self.root];
        cosign3(self.d(), &[&args[..], &[HTTP, "--yes", "--type", kind, "--predicate", predicate, image]].concat())
    }

    fn cosign3_verify(&self, key: &str, image: &str) -> Output {
        cosign3(
            self.d(),
            &["verify", "--key", key, "--trusted-root", &self.root, "--insecure-ignore-tlog", HTTP, image],
        )
    }

    fn cosign3_verify_attestation(&self, key: &str, kind: &str, image: &str) -> Output {
        let args = ["verify-attestation", "--key", key, "--trusted-root", &self.root, "--insecure-ignore-tlog", HTTP];
        cosign3(self.d(), &[&args[..], &["--type", kind, image]].concat())
    }

    /// cosign 2.5, legacy `.sig` tag (no transparency log).
    fn cosign2_sign(&self, key: &str, image: &str) -> Output {
        cosign(self.d(), &["sign", "--key", key, "--tlog-upload=false", "--yes", HTTP, image])
    }

    fn sigil_sign(&self, key: &str, image: &str) -> Output {
        sigil(self.d(), &["sign", HTTP, "--format", "bundle", "--key", key, image])
    }

    fn sigil_attest(&self, key: &str, kind: &str, predicate: &str, image: &str) -> Output {
        let args =
            ["attest", HTTP, "--format", "bundle", "--key", key, "--type", kind, "--predicate", predicate, image];
        sigil(self.d(), &args)
    }

    fn sigil_verify(&self, key: &str, image: &str, extra: &[&str]) -> Output {
        sigil(self.d(), &[&["verify", HTTP, "--key", key][..], extra, &[image]].concat())
    }

    fn sigil_verify_attestation(&self, key: &str, kind: &str, image: &str) -> Output {
        sigil(self.d(), &["verify-attestation", HTTP, "--key", key, "--type", kind, image])
    }

    /// The bundle referrers of `image` in `repo`, as stored.
    fn referrers(&self, repo: &str, image: &Digest) -> Vec<StoredReferrer> {
        let store = self.store(repo);
        rt().block_on(async {
            let mut out = Vec::new();
            for e in list_referrers(&store, image, None).await.unwrap() {
                let raw = store.get_manifest(&ManifestRef::Digest(e.digest.clone())).await.unwrap().unwrap();
                let manifest: Value = serde_json::from_slice(&raw.bytes).unwrap();
                if manifest["artifactType"] != BUNDLE_V03 {
                    continue;
                }
                let layer = Digest::parse(manifest["layers"][0]["digest"].as_str().unwrap()).unwrap();
                let bundle = store.get_blob(&layer, 1 << 20).await.unwrap();
                out.push(StoredReferrer { manifest, bundle });
            }
            out
        })
    }

    /// The one bundle referrer of `image` in `repo` whose statement has `predicate_type`.
    fn referrer(&self, repo: &str, image: &Digest, predicate_type: &str) -> StoredReferrer {
        let mut found: Vec<StoredReferrer> = self
            .referrers(repo, image)
            .into_iter()
            .filter(|r| r.statement()["predicateType"] == predicate_type)
            .collect();
        assert_eq!(found.len(), 1, "one {predicate_type} bundle referrer of {image} in {repo}");
        found.remove(0)
    }

    /// Pushes `manifest` (a bundle referrer, its layer replaced by `bundle`) by digest into
    /// `repo` and lists it for `listed_for` as the registry allows: on docker-registry the
    /// tag-schema index `sha256-<hex>` of `listed_for` is written holding this one entry (so
    /// any subject can be listed under any image); refreg's referrers API lists a manifest
    /// under its `subject` only, so there `listed_for` must be the subject.
    fn place(&self, repo: &str, mut manifest: Value, bundle: &[u8], listed_for: &Digest) -> Digest {
        let store = self.store(repo);
        manifest["layers"][0] =
            json!({"mediaType": BUNDLE_V03, "size": bundle.len(), "digest": Digest::sha256(bundle)});
        let bytes = serde_json::to_vec(&manifest).unwrap();
        let digest = Digest::sha256(&bytes);
        rt().block_on(async {
            store.put_blob(bundle.to_vec()).await.unwrap();
            store.put_blob(EMPTY_JSON.to_vec()).await.unwrap();
            store.put_manifest(&ManifestRef::Digest(digest.clone()), OCI_MANIFEST, bytes.clone()).await.unwrap();
            match self.kind {
                RegistryKind::Distribution => {
                    let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [{
                        "mediaType": OCI_MANIFEST, "size": bytes.len(), "digest": digest, "artifactType": OCI_EMPTY
                    }]});
                    let tag = ManifestRef::Tag(referrers_tag(listed_for));
                    store.put_manifest(&tag, OCI_INDEX, serde_json::to_vec(&index).unwrap()).await.unwrap();
                }
                RegistryKind::Referrers => {
                    assert_eq!(manifest["subject"]["digest"], listed_for.to_string(), "refreg lists by subject only");
                }
            }
        });
        digest
    }

    /// The subject descriptor of `image` in `repo` (as cosign writes it).
    fn subject(&self, repo: &str, image: &Digest) -> Value {
        let raw = rt().block_on(self.store(repo).get_manifest(&ManifestRef::Digest(image.clone()))).unwrap().unwrap();
        json!({"mediaType": OCI_MANIFEST, "size": raw.bytes.len(), "digest": image})
    }
}

/// A bundle referrer as a registry holds it.
struct StoredReferrer {
    manifest: Value,
    bundle: Vec<u8>,
}

impl StoredReferrer {
    fn statement(&self) -> Value {
        statement_of(&self.bundle)
    }
}

fn statement_of(bundle: &[u8]) -> Value {
    let b: Value = serde_json::from_slice(bundle).unwrap();
    let payload = B64.decode(b["dsseEnvelope"]["payload"].as_str().unwrap()).unwrap();
    serde_json::from_slice(&payload).unwrap()
}

fn sigil_statements(out: &Output) -> Vec<Value> {
    stdout(out).lines().map(|l| serde_json::from_str(l).expect("sigil prints statements")).collect()
}

#[track_caller]
fn assert_cosign_ok(o: &Output, what: &str) {
    assert_eq!(code(o), 0, "cosign 3 {what}\nstdout:\n{}\nstderr:\n{}", stdout(o), stderr(o));
}

// ---------------------------------------------------------------------------------------
// cosign 3.1.1 writes, sigil reads.

on_both_registries! {
    /// `cosign sign` (3.1.1: a sign/v1 bundle referrer) passes `sigil verify --key`; the JSON
    /// says it came from a bundle; `--format legacy` finds no signature.
    // see: issue 9
    fn cosign3_signature_verifies_with_sigil(kind) {
        let s = Setup::new(kind);
        let a = s.push("app", "a");
        let img = s.image("app", &a);
        assert_cosign_ok(&s.cosign3_sign("s.key", &img), "sign");

        let out = s.sigil_verify("s.pub", &img, &[]);
        assert_code(&out, 0);
        let v: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
        assert_eq!(v["formats"], json!(["bundle"]), "{v}");
        assert_eq!(v["verified"], true);
        assert_eq!(v["signatures"][0]["predicateType"], SIGN_V1, "{v}");
        assert_eq!(v["signatures"][0]["subject"][0]["digest"]["sha256"], a.hex(), "{v}");
        assert_code(&s.sigil_verify("s.pub", &img, &["--format", "bundle"]), 0);

        let out = s.sigil_verify("s.pub", &img, &["--format", "legacy"]);
        assert_code(&out, 10);
        assert!(stdout(&out).is_empty());
    }

    /// `cosign attest` (3.1.1) of each type passes `sigil verify-attestation --type`, which
    /// prints the statement; the image then carries attestation bundles only, and `sigil
    /// verify` refuses it (an attestation is not a signature) where cosign 3.1.1's `verify`
    /// accepts it.
    // see: issue 9
    fn cosign3_attestations_verify_with_sigil_and_never_pass_verify(kind) {
        let s = Setup::new(kind);
        let a = s.push("app", "a");
        let img = s.image("app", &a);
        for (t, _, file, _, _) in TYPES {
            assert_cosign_ok(&s.cosign3_attest("s.key", t, file, &img), &format!("attest --type {t}"));
        }
        for (t, uri, _, pointer, value) in TYPES {
            let out = s.sigil_verify_attestation("s.pub", t, &img);
            assert_code(&out, 0);
            let statements = sigil_statements(&out);
            assert_eq!(statements.len(), 1, "{t}: {}", stdout(&out));
            let st = &statements[0];
            assert_eq!(st["predicateType"], uri, "{t}");
            // cosign 3.1.1 writes attestation statements as in-toto v0.1.
            assert_eq!(st["_type"], "https://in-toto.io/Statement/v0.1", "{t}");
            assert_eq!(st["subject"][0]["digest"]["sha256"], a.hex(), "{t}");
            assert_eq!(st["predicate"].pointer(pointer).and_then(Value::as_str), Some(value), "{t}: {st}");
            assert!(stderr(&out).contains("1 attestation(s)"), "{t}: {}", stderr(&out));
        }

        // Only attestation bundles on the image: not signed.
        let out = s.sigil_verify("s.pub", &img, &[]);
        assert_code(&out, 12);
        assert!(stdout(&out).is_empty());
        let err = stderr(&out);
        assert_eq!(err.matches("is an attestation of predicate type").count(), 4, "{err}");
        assert_cosign_ok(&s.cosign3_verify("s.pub", &img), "verify (lists attestation bundles as signatures)");
    }
}

// ---------------------------------------------------------------------------------------
// sigil writes, cosign 3.1.1 reads.

on_both_registries! {
    /// `sigil sign --format bundle` and `attest --format bundle` (each type) pass cosign
    /// 3.1.1's `verify` and `verify-attestation --type`, which read back what was signed. The
    /// five writers run at once (on docker-registry each one confirms its entry in the shared
    /// tag-schema index, which takes about a second): none is lost.
    // see: issue 9
    fn sigil_bundles_verify_with_cosign3(kind) {
        let s = Setup::new(kind);
        let a = s.push("app", "a");
        let img = s.image("app", &a);
        std::thread::scope(|scope| {
            let sign = scope.spawn(|| s.sigil_sign("s.key", &img));
            let attests: Vec<_> =
                TYPES.iter().map(|(t, _, file, _, _)| scope.spawn(|| s.sigil_attest("s.key", t, file, &img))).collect();
            for w in std::iter::once(sign).chain(attests) {
                assert_code(&w.join().unwrap(), 0);
            }
        });

        let out = s.cosign3_verify("s.pub", &img);
        assert_cosign_ok(&out, "verify");
        let claims: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
        let digests: Vec<&Value> = claims.as_array().unwrap().iter().map(|c| &c["critical"]["image"]["docker-manifest-digest"]).collect();
        assert!(!digests.is_empty() && digests.iter().all(|d| **d == a.to_string()), "{claims}");

        for (t, uri, _, pointer, value) in TYPES {
            let out = s.cosign3_verify_attestation("s.pub", t, &img);
            assert_cosign_ok(&out, &format!("verify-attestation --type {t}"));
            let statements = cosign_statements(&out);
            assert_eq!(statements.len(), 1, "{t}: {}", stdout(&out));
            assert_eq!(statements[0]["predicateType"], uri, "{t}");
            assert_eq!(statements[0]["subject"][0]["digest"]["sha256"], a.hex(), "{t}");
            assert_eq!(statements[0]["predicate"].pointer(pointer).and_then(Value::as_str), Some(value), "{t}");
        }
        // And sigil reads its own.
        let out = s.sigil_verify("s.pub", &img, &["--format", "bundle"]);
        assert_code(&out, 0);
    }
}

on_both_registries! {
    /// sigil and cosign 3 writing bundles to one image in turn keep each other's referrers
    /// (on docker-registry both read-modify-write the one tag-schema index), and each tool
    /// then verifies all four.
    // see: issue 9
    fn mixed_writers_keep_each_others_referrers(kind) {
        let s = Setup::new(kind);
        let a = s.push("app", "a");
        let img = s.image("app", &a);
        assert_code(&s.sigil_sign("s.key", &img), 0);
        assert_cosign_ok(&s.cosign3_attest("s.key", "slsaprovenance1", "slsa1.json", &img), "attest");
        assert_code(&s.sigil_attest("s.key", "spdxjson", "spdx.json", &img), 0);
        assert_cosign_ok(&s.cosign3_sign("s.key", &img), "sign");
        assert_eq!(s.referrers("app", &a).len(), 4, "every writer's referrer is listed");

        let out = s.sigil_verify("s.pub", &img, &[]);
        assert_code(&out, 0);
        let v: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
        assert_eq!(v["formats"], json!(["bundle", "bundle"]), "both signatures: {v}");
        let out = s.cosign3_verify("s.pub", &img);
        assert_cosign_ok(&out, "verify");
        for t in ["slsaprovenance1", "spdxjson"] {
            assert_code(&s.sigil_verify_attestation("s.pub", t, &img), 0);
            let out = s.cosign3_verify_attestation("s.pub", t, &img);
            assert_cosign_ok(&out, &format!("verify-attestation --type {t}"));
            assert_eq!(cosign_statements(&out).len(), 1, "{t}");
        }
    }
}

// ---------------------------------------------------------------------------------------
// Rejections both tools agree on: sigil exits 12 with nothing on stdout, cosign 3 non-zero.
// Each manipulated referrer is built from what a tool wrote in the repository `staging` and
// placed in the repository `target` (same registry, same image digests), where it is the only
// referrer: nothing valid sits next to it.

#[track_caller]
fn both_refuse(s: &Setup, image: &str, why: &str, sigil_reason: &str) {
    let c = s.cosign3_verify("s.pub", image);
    assert_ne!(code(&c), 0, "cosign 3 accepted {why}: {}", stdout(&c));
    let out = s.sigil_verify("s.pub", image, &[]);
    assert_eq!(code(&out), 12, "sigil on {why}: {}", stderr(&out));
    assert!(stdout(&out).is_empty(), "{why}");
    assert!(stderr(&out).contains(sigil_reason), "{why}: expected {sigil_reason:?} in\n{}", stderr(&out));
}

on_both_registries! {
    /// Bundles signed with another key (by cosign 3 and by sigil) are refused by both tools.
    // see: issue 9
    fn both_refuse_a_bundle_signed_with_another_key(kind) {
        let s = Setup::new(kind);
        let a = s.push("app", "a");
        assert_cosign_ok(&s.cosign3_sign("other.key", &s.image("app", &a)), "sign");
        both_refuse(&s, &s.image("app", &a), "a cosign bundle by another key", "bundle signature");
        let b = s.push("app", "b");
        assert_code(&s.sigil_sign("other.key", &s.image("app", &b)), 0);
        both_refuse(&s, &s.image("app", &b), "a sigil bundle by another key", "bundle signature");
    }

    /// A bundle whose DSSE payload was changed after signing (the statement still about the
    /// image) is refused by both.
    // see: issue 9
    fn both_refuse_a_tampered_envelope(kind) {
        let s = Setup::new(kind);
        let a = s.push("staging", "a");
        assert_cosign_ok(&s.cosign3_sign("s.key", &s.image("staging", &a)), "sign");
        let r = s.referrer("staging", &a, SIGN_V1);
        let mut bundle: Value = serde_json::from_slice(&r.bundle).unwrap();
        let mut st = r.statement();
        st["predicate"] = json!({"tampered": true});
        bundle["dsseEnvelope"]["payload"] = Value::String(B64.encode(serde_json::to_vec(&st).unwrap()));
        assert_eq!(s.push("target", "a"), a);
        s.place("target", r.manifest, &serde_json::to_vec(&bundle).unwrap(), &a);
        both_refuse(&s, &s.image("target", &a), "a tampered envelope", "bundle signature");
    }

    /// A valid bundle about image A in a referrer whose subject is image B (so listed for B
    /// by either registry) is refused by both for B: the signed statement names A.
    // see: issue 9
    fn both_refuse_a_bundle_for_another_digest(kind) {
        let s = Setup::new(kind);
        let a = s.push("staging", "a");
        assert_cosign_ok(&s.cosign3_sign("s.key", &s.image("staging", &a)), "sign");
        let r = s.referrer("staging", &a, SIGN_V1);
        let b = s.push("target", "b");
        let mut manifest = r.manifest;
        manifest["subject"] = s.subject("target", &b);
        s.place("target", manifest, &r.bundle, &b);
        both_refuse(&s, &s.image("target", &b), "a bundle about another digest", "bundle statement");
    }

    /// A sign/v1 referrer whose layer was swapped for a (valid, same key, same image)
    /// attestation bundle, its annotations still announcing sign/v1: sigil refuses it as a
    /// signature. cosign 3.1.1 accepts it, as it accepts any attestation bundle in `verify`
    /// (see cosign3_attestations_verify_with_sigil_and_never_pass_verify): the tools do not
    /// agree here, and sigil's answer is the one the issue asks for.
    // see: issue 9
    fn sigil_refuses_a_signature_bundle_replaced_by_an_attestation(kind) {
        let s = Setup::new(kind);
        let a = s.push("staging", "a");
        let img = s.image("staging", &a);
        assert_cosign_ok(&s.cosign3_sign("s.key", &img), "sign");
        assert_cosign_ok(&s.cosign3_attest("s.key", "slsaprovenance1", "slsa1.json", &img), "attest");
        let sig = s.referrer("staging", &a, SIGN_V1);
        let att = s.referrer("staging", &a, "https://slsa.dev/provenance/v1");
        assert_eq!(sig.manifest["annotations"]["dev.sigstore.bundle.predicateType"], SIGN_V1);
        assert_eq!(s.push("target", "a"), a);
        s.place("target", sig.manifest, &att.bundle, &a);
        let target = s.image("target", &a);
        let out = s.sigil_verify("s.pub", &target, &[]);
        assert_code(&out, 12);
        assert!(stdout(&out).is_empty());
        assert!(stderr(&out).contains("is an attestation of predicate type \"https://slsa.dev/provenance/v1\""), "{}", stderr(&out));
        let c = s.cosign3_verify("s.pub", &target);
        assert_cosign_ok(&c, "verify of an attestation bundle under sign/v1 annotations");
    }
}

/// A referrer whose `subject` is image A, listed in image B's tag-schema index (only
/// docker-registry can hold this: refreg's referrers API lists a manifest under its subject
/// alone, so the case cannot arise there). With the statement about A, both refuse it for B.
/// With the statement about B (a valid signature of B, inside a referrer that says it is
/// about A) sigil still refuses the referrer for its subject, where cosign 3.1.1 accepts it.
// see: issue 9
#[test]
fn both_refuse_a_referrer_whose_subject_is_another_image() {
    let s = Setup::new(RegistryKind::Distribution);
    let a = s.push("staging", "a");
    let b = s.push("staging", "b");
    assert_cosign_ok(&s.cosign3_sign("s.key", &s.image("staging", &a)), "sign");
    assert_cosign_ok(&s.cosign3_sign("s.key", &s.image("staging", &b)), "sign");
    let ra = s.referrer("staging", &a, SIGN_V1);
    let rb = s.referrer("staging", &b, SIGN_V1);

    // A's referrer, unchanged, listed for B.
    assert_eq!(s.push("target", "a"), a);
    assert_eq!(s.push("target", "b"), b);
    s.place("target", ra.manifest.clone(), &ra.bundle, &b);
    both_refuse(&s, &s.image("target", &b), "A's referrer listed for B", "not this image");

    // B's valid bundle in a referrer whose subject says A, listed for B.
    assert_eq!(s.push("target2", "a"), a);
    assert_eq!(s.push("target2", "b"), b);
    let mut manifest = rb.manifest;
    manifest["subject"] = s.subject("target2", &a);
    s.place("target2", manifest, &rb.bundle, &b);
    let out = s.sigil_verify("s.pub", &s.image("target2", &b), &[]);
    assert_code(&out, 12);
    assert!(stderr(&out).contains(&format!("has subject {a}, not this image ({b})")), "{}", stderr(&out));
    // cosign 3.1.1 does not look at the referrer's subject: it accepts this one.
    assert_cosign_ok(
        &s.cosign3_verify("s.pub", &s.image("target2", &b)),
        "verify of B's bundle under a referrer about A",
    );
}

// ---------------------------------------------------------------------------------------
// Both formats on one image.

on_both_registries! {
    /// cosign 2.5's legacy `.sig` signature and cosign 3's bundle on one image: sigil verifies
    /// either; when only one verifies with the key, the image still verifies, and `--format`
    /// restricted to the other one refuses it.
    // see: issue 9
    fn both_formats_on_one_image_either_verifying_is_enough(kind) {
        let s = Setup::new(kind);
        let formats = |out: &Output| -> Value {
            let v: Value = serde_json::from_str(stdout(out).trim()).unwrap();
            v["formats"].clone()
        };

        // Both with the key.
        let a = s.push("app", "a");
        let img = s.image("app", &a);
        assert_code(&s.cosign2_sign("s.key", &img), 0);
        assert_cosign_ok(&s.cosign3_sign("s.key", &img), "sign");
        let out = s.sigil_verify("s.pub", &img, &[]);
        assert_code(&out, 0);
        assert_eq!(formats(&out), json!(["legacy", "bundle"]));
        for f in ["legacy", "bundle"] {
            let out = s.sigil_verify("s.pub", &img, &["--format", f]);
            assert_code(&out, 0);
            assert_eq!(formats(&out), json!([f]));
        }

        // Legacy with the key, the bundle with another: legacy is enough.
        let b = s.push("app", "b");
        let img = s.image("app", &b);
        assert_code(&s.cosign2_sign("s.key", &img), 0);
        assert_cosign_ok(&s.cosign3_sign("other.key", &img), "sign");
        let out = s.sigil_verify("s.pub", &img, &[]);
        assert_code(&out, 0);
        assert_eq!(formats(&out), json!(["legacy"]));
        assert!(stderr(&out).contains("✗ bundle signature"), "the other is named: {}", stderr(&out));
        assert_code(&s.sigil_verify("s.pub", &img, &["--format", "legacy"]), 0);
        assert_code(&s.sigil_verify("s.pub", &img, &["--format", "bundle"]), 12);

        // The bundle with the key, legacy with another: the bundle is enough.
        let c = s.push("app", "c");
        let img = s.image("app", &c);
        assert_code(&s.cosign2_sign("other.key", &img), 0);
        assert_cosign_ok(&s.cosign3_sign("s.key", &img), "sign");
        let out = s.sigil_verify("s.pub", &img, &[]);
        assert_code(&out, 0);
        assert_eq!(formats(&out), json!(["bundle"]));
        assert_code(&s.sigil_verify("s.pub", &img, &["--format", "bundle"]), 0);
        assert_code(&s.sigil_verify("s.pub", &img, &["--format", "legacy"]), 12);
    }
}

// ---------------------------------------------------------------------------------------
// Keyless bundles on images, with production material.

/// The sigstore-conformance case used: a v0.3 bundle from Sigstore's production instance (a
/// Fulcio certificate for the conformance beacon workflow, a Rekor `dsse` entry with its
/// inclusion proof) whose DSSE envelope holds an in-toto v1 SLSA provenance statement about
/// one sha256 subject (`a.txt` of the suite). Verified with the public-good trusted root.
const KEYLESS_CASE: &str = "happy-path-intoto-in-dsse-v3";
const IDENTITY: &str = "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main";
const ISSUER: &str = "https://token.actions.githubusercontent.com";
const SLSA1_URI: &str = "https://slsa.dev/provenance/v1";

fn keyless_bundle() -> (Vec<u8>, Digest) {
    let bytes = std::fs::read(conformance_suite().join(KEYLESS_CASE).join("bundle.sigstore.json")).unwrap();
    let st = statement_of(&bytes);
    assert_eq!(st["predicateType"], SLSA1_URI);
    let subject = Digest::parse(&format!("sha256:{}", st["subject"][0]["digest"]["sha256"].as_str().unwrap())).unwrap();
    (bytes, subject)
}

fn public_good() -> PathBuf {
    vectors().join("trust/public-good.trusted_root.json")
}

/// The pure check of one image bundle, keyless: the production bundle passes for the digest
/// its statement names (certificate chain, identity, issuer, Rekor proof, DSSE signature,
/// subject), and is refused for any other digest and for another identity.
// see: issue 9
#[test]
fn keyless_production_bundle_passes_the_image_bundle_check_for_its_own_digest_only() {
    use sigil::identity::Matcher;
    use sigil::verify::attestation::AttestationPolicy;
    use sigil::verify::image_bundle::{check_image_bundle, Expect};
    use sigil::verify::{ImageSigner, Rejection};

    let (bytes, subject) = keyless_bundle();
    let root = std::fs::read(public_good()).unwrap();
    let trust = sigil::trust::Trust::from_bytes(&root, "public-good").unwrap();
    let (identity, issuer) = (Matcher::Exact(IDENTITY.into()), Matcher::Exact(ISSUER.into()));
    let other_identity = Matcher::Exact("https://github.com/evil/repo/.github/workflows/x.yml@refs/heads/main".into());
    let slsa = sigil::policy::SlsaExpectations::default();
    let policy = |identity| AttestationPolicy {
        signer: ImageSigner::Keyless { identity, issuer: &issuer, trust: &trust },
        predicate_type: Some(SLSA1_URI),
        max_blob_bytes: 1 << 20,
        slsa: &slsa,
        checks: &[],
        formats: sigil::attachments::Formats::Any,
    };
    let ok = policy(&identity);
    let checked = check_image_bundle(&bytes, &subject, &ok.signer, &Expect::Attestation(&ok)).unwrap();
    assert_eq!(checked.predicate_type, SLSA1_URI);
    let facts = checked.keyless.expect("keyless facts");
    assert_eq!(facts.identity.as_deref(), Some(IDENTITY));
    assert_eq!(facts.issuer.as_deref(), Some(ISSUER));
    assert!(facts.tlog_verified, "the Rekor entry was verified");

    let other = Digest::sha256(b"another image");
    match check_image_bundle(&bytes, &other, &ok.signer, &Expect::Attestation(&ok)) {
        Err(Rejection::Keyless(r)) => assert_eq!(r.check, "artifact digest", "{r}"),
        other => panic!("another digest: {other:?}"),
    }
    let wrong = policy(&other_identity);
    match check_image_bundle(&bytes, &subject, &wrong.signer, &Expect::Attestation(&wrong)) {
        Err(Rejection::Keyless(r)) => assert_eq!(r.check, "certificate identity", "{r}"),
        other => panic!("another identity: {other:?}"),
    }
    // Never an image signature.
    let none = sigil::payload::Annotations::new();
    let sig = check_image_bundle(&bytes, &subject, &ok.signer, &Expect::Signature { annotations: &none });
    assert!(matches!(sig, Err(Rejection::NotASignature(_))), "{sig:?}");
}

on_both_registries! {
    /// The production bundle attached as a referrer (artifact type bundle v0.3) goes through
    /// the whole `verify-attestation` path, keyless: refused on a pushed image (its statement
    /// is about another digest), accepted for the digest its statement names (referenced by
    /// digest; the registry holds no manifest there, which verifying by digest does not need),
    /// refused there for another identity.
    // see: issue 9
    fn keyless_production_bundle_as_a_referrer(kind) {
        let s = Setup::new(kind);
        let (bundle, subject) = keyless_bundle();
        let root = public_good().display().to_string();
        let verify = |image: &str, identity: &str| {
            let args = ["verify-attestation", HTTP, "--trusted-root", &root, "--certificate-identity", identity];
            sigil(s.d(), &[&args[..], &["--certificate-oidc-issuer", ISSUER, "--type", "slsaprovenance1", image]].concat())
        };
        let referrer = |subject: Value| {
            json!({
                "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": BUNDLE_V03,
                "config": {"mediaType": OCI_EMPTY, "size": 2, "digest": Digest::sha256(EMPTY_JSON)},
                "layers": [null],
                "annotations": {
                    "dev.sigstore.bundle.content": "dsse-envelope",
                    "dev.sigstore.bundle.predicateType": SLSA1_URI,
                },
                "subject": subject,
            })
        };

        // On a pushed image: the keyless checks run, and the digest is not the statement's.
        let x = s.push("keyless", "x");
        s.place("keyless", referrer(s.subject("keyless", &x)), &bundle, &x);
        let out = verify(&s.image("keyless", &x), IDENTITY);
        assert_code(&out, 12);
        assert!(stdout(&out).is_empty());
        assert!(stderr(&out).contains("artifact digest"), "{}", stderr(&out));

        // For the digest the statement names: verified, keyless, the statement printed.
        let about = json!({"mediaType": OCI_MANIFEST, "size": 1234, "digest": subject});
        s.place("keyless", referrer(about), &bundle, &subject);
        let img = s.image("keyless", &subject);
        let out = verify(&img, IDENTITY);
        assert_code(&out, 0);
        assert!(stderr(&out).contains("keyless"), "{}", stderr(&out));
        let statements = sigil_statements(&out);
        assert_eq!(statements.len(), 1);
        assert_eq!(statements[0]["subject"][0]["digest"]["sha256"], subject.hex());

        let out = verify(&img, "https://github.com/evil/repo/.github/workflows/x.yml@refs/heads/main");
        assert_code(&out, 12);
        assert!(stderr(&out).contains("certificate identity"), "{}", stderr(&out));
    }
}
