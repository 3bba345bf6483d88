//! Signed verification summaries: the gate's [`Decision`] about an image written as a SLSA
//! Verification Summary Attestation (VSA), signed and attached to the image, so that a later
//! gate or an auditor can rely on the decision without repeating it
//! (`sigil verify-attestation --type vsa`, `sigil inspect`).
//!
//! What is written follows:
//! - SLSA VSA v1, <https://slsa.dev/spec/v1.0/verification_summary> (predicate type
//!   `https://slsa.dev/verification_summary/v1`; fields `verifier.id`, `timeVerified`,
//!   `resourceUri`, `policy`, `inputAttestations`, `verificationResult`, `verifiedLevels`,
//!   `slsaVersion`), with `verifier.version` (a map of component to version) from its 1.1
//!   revision (change history of <https://slsa.dev/spec/draft/verification_summary>);
//! - in-toto attestation's entry for the predicate
//!   (<https://github.com/in-toto/attestation/blob/main/spec/predicates/vsa.md>, which points at
//!   the SLSA page, and `protos/in_toto_attestation/predicates/vsa/v1/vsa.proto`), inside an
//!   in-toto Statement v1 ([`crate::intoto`]) whose subject is the image (repository and digest).
//!
//! Choices the specification leaves open:
//! - `resourceUri` is the image as checked, by digest: `registry/repository@sha256:…`, the
//!   reference a gate that pins digests admits, so a summary for one repository is not one for
//!   another;
//! - a failed decision lists `FAILED` as its only level (the specification's value for a
//!   failed policy); a passed one lists the levels its rule declares, at most one per SLSA
//!   track ([`check_levels`]);
//! - `slsaVersion` is `1.0`: the levels a rule declares are SLSA 1.0's build track;
//! - `inputAttestations` is left out ("MAY be absent if the verifier does not support this
//!   feature"): if present it must list every attestation used, each by the digest of the
//!   attestation, which a [`Decision`] does not carry (it names predicate types only).
//!
//! A decision whose checks could not be made ([`Outcome::CouldNotCheck`]) has no summary: it
//! decided nothing. Building the statement is pure (the time is an argument); [`attach`] signs
//! it with the given signer and witnesses and stores it through [`crate::sign::attest_image`],
//! the one attest path, in either format.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use super::{Decision, Outcome};
use crate::attachments::Format;
use crate::digest::Digest;
use crate::intoto::Statement;
use crate::oci::{ManifestRef, Store};
use crate::predicates::{rfc3339_utc, SLSA_VERIFICATION_SUMMARY_V1};
use crate::reference::RegistryRef;
use crate::rekor::TransparencyLog;
use crate::sign::sigstore::{Signer, Witnesses};
use crate::sign::{self, Attestation, Recursion, SignError, Signed, TagLocks};
use crate::tsa::TimestampAuthority;

/// The verifier id written when the operator names none: sigil's deploy gate. Consumers
/// accept a summary for a (signer, verifier) pair; the signer's key or identity is what
/// tells one gate from another.
pub const DEFAULT_VERIFIER_ID: &str = "urn:sigil:gate";

/// The SLSA version whose levels the summaries state.
pub const SLSA_VERSION: &str = "1.0";

pub use crate::policy::{check_levels, LevelError, FAILED_LEVEL};

/// Latest `timeVerified` written: 9999-12-31T23:59:59Z (RFC 3339 has four-digit years).
const MAX_TIME: i64 = 253_402_300_799;

/// Who verified: `verifier` of the predicate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Verifier {
    id: String,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    version: BTreeMap<String, String>,
}

impl Verifier {
    /// sigil, this version (`{"sigil": "<version>"}`), as the verifier `id` (an absolute URI,
    /// e.g. [`DEFAULT_VERIFIER_ID`] or the operator's own).
    pub fn sigil(id: &str) -> Result<Self, SummaryError> {
        let version = [("sigil".to_owned(), env!("CARGO_PKG_VERSION").to_owned())].into_iter().collect();
        Self::new(id, version)
    }

    /// A verifier `id` (an absolute URI) with its components' versions.
    pub fn new(id: &str, version: BTreeMap<String, String>) -> Result<Self, SummaryError> {
        absolute_uri("verifier.id", id)?;
        Ok(Verifier { id: id.to_owned(), version })
    }

    /// The id.
    pub fn id(&self) -> &str {
        &self.id
    }
}

/// The policy the image was checked against: `policy` of the predicate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyRef {
    uri: String,
    digest: Digest,
}

impl PolicyRef {
    /// A policy named by an absolute URI, with the digest of its content.
    pub fn new(uri: &str, digest: Digest) -> Result<Self, SummaryError> {
        absolute_uri("policy.uri", uri)?;
        Ok(PolicyRef { uri: uri.to_owned(), digest })
    }

    /// A policy file at the absolute `path` (`file:///…`), with the digest of its content.
    /// Pure: the path is not read.
    pub fn file(path: &Path, digest: Digest) -> Result<Self, SummaryError> {
        let uri = url::Url::from_file_path(path).map_err(|()| SummaryError::NotAUri {
            field: "policy.uri",
            value: path.display().to_string(),
            reason: "a policy file is named by its absolute path".into(),
        })?;
        Ok(PolicyRef { uri: uri.into(), digest })
    }
}

/// What a verification summary says besides the decision: fixed for one gate and one policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issuer {
    /// Who verified.
    pub verifier: Verifier,
    /// Against which policy.
    pub policy: PolicyRef,
}

/// `verificationResult`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum VerificationResult {
    /// The image met the policy.
    Passed,
    /// Verification said no.
    Failed,
}

/// Why a decision has no verification summary.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SummaryError {
    /// The checks could not be made: nothing was decided, so nothing is summarised.
    #[error("{image}: no verification summary: the checks could not be made ({reason}); nothing was signed")]
    CouldNotCheck {
        /// The image.
        image: String,
        /// Why the checks could not be made.
        reason: String,
    },
    /// The decision names no digest, so there is nothing for a summary to be about.
    #[error("{0}: no verification summary: the image was not resolved to a digest; nothing was signed")]
    NoDigest(String),
    /// The decision's image is not a registry reference.
    #[error("{image}: no verification summary: not a registry image reference ({reason}); nothing was signed")]
    Image {
        /// The image.
        image: String,
        /// Why.
        reason: String,
    },
    /// The image reference names a digest other than the decision's.
    #[error("{image}: no verification summary: the reference names another digest than the decision's {digest}; nothing was signed")]
    DigestMismatch {
        /// The image.
        image: String,
        /// The decision's digest.
        digest: Digest,
    },
    /// The time is not one RFC 3339 can write (before 1970 or after 9999).
    #[error("time {0} (seconds since 1970) cannot be written as an RFC 3339 timeVerified; check the system clock")]
    Time(i64),
    /// The rule's verified levels cannot be written.
    #[error(
        "{image}: no verification summary: the rule's verified levels: {source}; fix verifiedLevels in the policy"
    )]
    Levels {
        /// The image.
        image: String,
        /// What is wrong.
        source: LevelError,
    },
    /// A field that must be a URI is not one.
    #[error(
        "{field} {value:?} is not an absolute URI ({reason}); give one with a scheme, e.g. https://… or file:///…"
    )]
    NotAUri {
        /// Which field.
        field: &'static str,
        /// The value.
        value: String,
        /// Why.
        reason: String,
    },
}

fn absolute_uri(field: &'static str, value: &str) -> Result<(), SummaryError> {
    url::Url::parse(value).map(|_| ()).map_err(|e| SummaryError::NotAUri {
        field,
        value: value.to_owned(),
        reason: e.to_string(),
    })
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Predicate<'a> {
    verifier: &'a Verifier,
    time_verified: String,
    resource_uri: String,
    policy: ResourceDescriptor,
    verification_result: VerificationResult,
    verified_levels: Vec<String>,
    slsa_version: &'static str,
}

#[derive(Serialize)]
struct ResourceDescriptor {
    uri: String,
    digest: BTreeMap<String, String>,
}

/// The in-toto statement summarising `decision`, verified at `verified_at_unix` (seconds
/// since 1970) by `issuer`'s verifier under its policy. A decision that could not be checked
/// has none.
pub fn statement(decision: &Decision, issuer: &Issuer, verified_at_unix: i64) -> Result<Statement, SummaryError> {
    let image = decision.image();
    let result = match decision.outcome() {
        Outcome::Passed => VerificationResult::Passed,
        Outcome::Failed { .. } => VerificationResult::Failed,
        Outcome::CouldNotCheck { reason } => {
            return Err(SummaryError::CouldNotCheck { image: image.to_owned(), reason: reason.clone() })
        }
    };
    let digest = decision.digest().ok_or_else(|| SummaryError::NoDigest(image.to_owned()))?;
    let reference = RegistryRef::parse(image)
        .map_err(|e| SummaryError::Image { image: image.to_owned(), reason: e.to_string() })?;
    if reference.selector().digest().is_some_and(|d| d != digest) {
        return Err(SummaryError::DigestMismatch { image: image.to_owned(), digest: digest.clone() });
    }
    if !(0..=MAX_TIME).contains(&verified_at_unix) {
        return Err(SummaryError::Time(verified_at_unix));
    }
    let verified_levels = match result {
        VerificationResult::Passed => {
            check_levels(decision.verified_levels())
                .map_err(|source| SummaryError::Levels { image: image.to_owned(), source })?;
            decision.verified_levels().to_vec()
        }
        VerificationResult::Failed => vec![FAILED_LEVEL.to_owned()],
    };
    let name = reference.name();
    let policy = &issuer.policy;
    let predicate = Predicate {
        verifier: &issuer.verifier,
        time_verified: rfc3339_utc(verified_at_unix),
        resource_uri: format!("{name}@{digest}"),
        policy: ResourceDescriptor {
            uri: policy.uri.clone(),
            digest: [(policy.digest.algorithm().name().to_owned(), policy.digest.hex().to_owned())].into(),
        },
        verification_result: result,
        verified_levels,
        slsa_version: SLSA_VERSION,
    };
    // Strings and maps of strings only: serialising cannot fail.
    let predicate = serde_json::to_value(&predicate).unwrap_or_default();
    Ok(Statement::for_image(&name, digest, SLSA_VERIFICATION_SUMMARY_V1, predicate))
}

/// Why no summary was attached.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AttachError {
    /// The decision has no summary (nothing was signed).
    #[error(transparent)]
    Summary(#[from] SummaryError),
    /// Signing or storing it failed.
    #[error(transparent)]
    Sign(#[from] SignError),
}

/// Signs the summary of `decision` (see [`statement`]) as a DSSE envelope by `signer`, with
/// the `witnesses`' evidence, and attaches it to the image in `sig_store` in `format`, as
/// `attest` does ([`sign::attest_image`]): a bundle referrer, or a layer of the image's
/// `.att` tag. `now_unix` is the bundle referrer's creation time. One entry, for the
/// decision's digest.
#[allow(clippy::too_many_arguments)]
pub async fn attach<S: Store, T: Store, L: TransparencyLog, W: TimestampAuthority>(
    image_store: &S,
    sig_store: &T,
    decision: &Decision,
    issuer: &Issuer,
    verified_at_unix: i64,
    signer: &Signer,
    witnesses: &Witnesses<'_, L, W>,
    format: Format,
    now_unix: i64,
    locks: &TagLocks,
) -> Result<Vec<Signed>, AttachError> {
    let parsed = statement(decision, issuer, verified_at_unix)?;
    let Some(digest) = decision.digest() else {
        return Err(SummaryError::NoDigest(decision.image().to_owned()).into());
    };
    let subject = sign::Subject {
        reference: ManifestRef::Digest(digest.clone()),
        repository: parsed.subject.first().map(|s| s.name.clone()).unwrap_or_default(),
        tag: None,
    };
    let what = Attestation::Statement { bytes: parsed.to_bytes(), parsed };
    let signed = sign::attest_image(
        image_store,
        sig_store,
        &subject,
        signer,
        witnesses,
        &what,
        Recursion::TopOnly,
        format,
        now_unix,
        locks,
    )
    .await?;
    Ok(signed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gate::Mode;
    use serde_json::{json, Value};

    /// `testdata/vsa`.
    fn vectors() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/vsa")
    }

    fn decision_from(v: &Value) -> Decision {
        let strings = |k: &str| -> Vec<String> {
            v[k].as_array().map(|a| a.iter().map(|s| s.as_str().unwrap().to_owned()).collect()).unwrap_or_default()
        };
        let outcome = match v["outcome"]["result"].as_str().unwrap() {
            "passed" => Outcome::Passed,
            "failed" => Outcome::Failed { reasons: strings("reasons") },
            "could-not-check" => Outcome::CouldNotCheck { reason: v["outcome"]["reason"].as_str().unwrap().into() },
            other => panic!("unknown outcome {other}"),
        };
        Decision {
            image: v["image"].as_str().unwrap().into(),
            digest: v["digest"].as_str().map(|d| Digest::parse(d).unwrap()),
            rule: v["rule"].as_str().map(str::to_owned),
            mode: Mode::Enforce,
            outcome,
            authorities: strings("authorities"),
            attestations: strings("attestations"),
            verified_levels: strings("verifiedLevels"),
        }
    }

    fn issuer_from(v: &Value) -> Issuer {
        let version = v["verifier"]["version"]
            .as_object()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned())).collect())
            .unwrap_or_default();
        Issuer {
            verifier: Verifier::new(v["verifier"]["id"].as_str().unwrap(), version).unwrap(),
            policy: PolicyRef::new(
                v["policy"]["uri"].as_str().unwrap(),
                Digest::parse(v["policy"]["digest"].as_str().unwrap()).unwrap(),
            )
            .unwrap(),
        }
    }

    fn error_name(e: &SummaryError) -> &'static str {
        match e {
            SummaryError::CouldNotCheck { .. } => "could-not-check",
            SummaryError::NoDigest(_) => "no-digest",
            SummaryError::Image { .. } => "image",
            SummaryError::DigestMismatch { .. } => "digest-mismatch",
            SummaryError::Time(_) => "time",
            SummaryError::Levels { .. } => "levels",
            SummaryError::NotAUri { .. } => "not-a-uri",
        }
    }

    /// Every vector in `testdata/vsa` (see its README): the decision, the issuer and the time
    /// in, the statement (or the error) out; each statement passes the predicate check
    /// `attest --type vsa` applies and reads back through `inspect`'s summary.
    #[test]
    fn vectors_give_their_statements() {
        let mut seen = 0;
        let mut files: Vec<_> = std::fs::read_dir(vectors()).unwrap().map(|e| e.unwrap().path()).collect();
        files.sort();
        for path in files.iter().filter(|p| p.extension().is_some_and(|e| e == "json")) {
            let v: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
            let name = path.display();
            assert!(v["comment"].is_string(), "{name}: a vector says what it is");
            let got = statement(&decision_from(&v["decision"]), &issuer_from(&v), v["timeVerified"].as_i64().unwrap());
            match (&v["expect"]["statement"], &v["expect"]["error"], got) {
                (want @ Value::Object(_), Value::Null, Ok(s)) => {
                    let s = serde_json::to_value(&s).unwrap();
                    assert_eq!(&s, want, "{name}");
                    let p = serde_json::to_vec(&s["predicate"]).unwrap();
                    crate::predicates::check_predicate(SLSA_VERIFICATION_SUMMARY_V1, &p)
                        .unwrap_or_else(|e| panic!("{name}: {e}"));
                    let crate::report::Summary::VerificationSummary { result, verified_levels, policy, .. } =
                        crate::report::summarize(SLSA_VERIFICATION_SUMMARY_V1, &s["predicate"])
                    else {
                        panic!("{name}: not summarised as a verification summary")
                    };
                    assert_eq!(result.as_deref(), want["predicate"]["verificationResult"].as_str(), "{name}");
                    assert_eq!(json!(verified_levels), want["predicate"]["verifiedLevels"], "{name}");
                    assert_eq!(policy.as_deref(), want["predicate"]["policy"]["uri"].as_str(), "{name}");
                }
                (Value::Null, Value::String(want), Err(e)) => assert_eq!(error_name(&e), want, "{name}: {e}"),
                (_, _, got) => panic!("{name}: unexpected {got:?}"),
            }
            seen += 1;
        }
        assert!(seen >= 5, "the vectors are there ({seen})");
    }

    fn passed(levels: &[&str]) -> Decision {
        Decision {
            image: "registry.example/team/app:1.0".into(),
            digest: Some(Digest::sha256(b"image")),
            rule: Some("prod".into()),
            mode: Mode::Enforce,
            outcome: Outcome::Passed,
            authorities: vec!["release".into()],
            attestations: vec![crate::predicates::SLSA_PROVENANCE_V1.into()],
            verified_levels: levels.iter().map(|l| (*l).to_owned()).collect(),
        }
    }

    fn issuer() -> Issuer {
        Issuer {
            verifier: Verifier::sigil(DEFAULT_VERIFIER_ID).unwrap(),
            policy: PolicyRef::file(Path::new("/etc/sigil/policy.yaml"), Digest::sha256(b"policy")).unwrap(),
        }
    }

    #[test]
    fn the_verifier_is_sigil_at_this_version_and_the_policy_a_file_uri() {
        let s = statement(&passed(&["SLSA_BUILD_LEVEL_3"]), &issuer(), 1_764_000_000).unwrap();
        let p = &s.predicate;
        assert_eq!(p["verifier"], json!({"id": "urn:sigil:gate", "version": {"sigil": env!("CARGO_PKG_VERSION")}}));
        assert_eq!(p["policy"]["uri"], "file:///etc/sigil/policy.yaml");
        assert_eq!(p["policy"]["digest"]["sha256"], Digest::sha256(b"policy").hex());
        assert_eq!(s.subject[0].name, "registry.example/team/app");
        assert!(s.is_about(&Digest::sha256(b"image")));
        assert!(p.get("inputAttestations").is_none(), "not without the attestations' digests");
        assert!(matches!(
            PolicyRef::file(Path::new("policy.yaml"), Digest::sha256(b"p")),
            Err(SummaryError::NotAUri { field: "policy.uri", .. })
        ));
        assert!(matches!(Verifier::sigil("sigil gate"), Err(SummaryError::NotAUri { field: "verifier.id", .. })));
    }

    #[test]
    fn times_are_rfc3339_utc_and_out_of_range_times_are_refused() {
        let at = |t| statement(&passed(&[]), &issuer(), t).map(|s| s.predicate["timeVerified"].clone());
        assert_eq!(at(0).unwrap(), "1970-01-01T00:00:00Z");
        assert_eq!(at(1_764_340_000).unwrap(), "2025-11-28T14:26:40Z");
        assert_eq!(at(MAX_TIME).unwrap(), "9999-12-31T23:59:59Z");
        assert_eq!(at(MAX_TIME + 1), Err(SummaryError::Time(MAX_TIME + 1)));
        assert_eq!(at(-1), Err(SummaryError::Time(-1)));
    }

    #[test]
    fn a_decision_that_could_not_check_has_no_summary() {
        let d = Decision::could_not_check("registry.example/app:1", None, Mode::Enforce, "registry down".into());
        let e = statement(&d, &issuer(), 1).unwrap_err();
        assert!(matches!(&e, SummaryError::CouldNotCheck { reason, .. } if reason == "registry down"), "{e}");
        assert!(e.to_string().contains("nothing was signed"), "{e}");
        // Even with a digest.
        let d = Decision { digest: Some(Digest::sha256(b"image")), ..d };
        assert!(matches!(statement(&d, &issuer(), 1), Err(SummaryError::CouldNotCheck { .. })));
        let d = Decision { digest: None, ..passed(&[]) };
        assert!(matches!(statement(&d, &issuer(), 1), Err(SummaryError::NoDigest(_))));
    }

    #[test]
    fn levels_are_one_per_track_and_never_failed_when_passed() {
        assert_eq!(check_levels(&[]), Ok(()));
        let ok = ["SLSA_BUILD_LEVEL_3", "SLSA_SOURCE_LEVEL_2", "SLSA_BUILD_REPRODUCED", "ACME_REVIEWED"];
        assert_eq!(check_levels(&ok.map(String::from)), Ok(()));
        let two = ["SLSA_BUILD_LEVEL_2", "SLSA_BUILD_LEVEL_3"].map(String::from);
        assert!(matches!(check_levels(&two), Err(LevelError::SameTrack { .. })));
        let twice = ["ACME_REVIEWED", "ACME_REVIEWED"].map(String::from);
        assert!(matches!(check_levels(&twice), Err(LevelError::SameTrack { .. })));
        assert_eq!(check_levels(&["FAILED".into()]), Err(LevelError::Failed));
        assert_eq!(check_levels(&[String::new()]), Err(LevelError::Empty));
        let e = statement(&passed(&["SLSA_BUILD_LEVEL_1", "SLSA_BUILD_LEVEL_3"]), &issuer(), 1).unwrap_err();
        assert!(matches!(e, SummaryError::Levels { .. }), "{e}");
        // A failed decision lists FAILED whatever the rule declares.
        let failed = Decision { outcome: Outcome::Failed { reasons: vec!["no".into()] }, ..passed(&[]) };
        let s = statement(&failed, &issuer(), 1).unwrap();
        assert_eq!(s.predicate["verificationResult"], "FAILED");
        assert_eq!(s.predicate["verifiedLevels"], json!(["FAILED"]));
    }

    #[test]
    fn a_reference_naming_another_digest_is_refused() {
        let other = Digest::sha256(b"other");
        let d = Decision { image: format!("registry.example/app@{other}"), ..passed(&[]) };
        assert!(matches!(statement(&d, &issuer(), 1), Err(SummaryError::DigestMismatch { .. })));
        let d = Decision { image: "oci:/tmp/layout".into(), ..passed(&[]) };
        assert!(matches!(statement(&d, &issuer(), 1), Err(SummaryError::Image { .. })));
    }

    /// The flow on a real OCI layout: attached in both formats through the attest path, the
    /// summary verifies with the key as an attestation of type `vsa` whose result is checked.
    #[test]
    fn attached_summaries_verify_as_vsa_attestations() {
        use crate::keys::{KeyAlgorithm, PrivateKey};
        use crate::oci::layout::LayoutStore;
        use crate::oci::manifest::{Descriptor, OCI_CONFIG, OCI_MANIFEST};
        use crate::verify::attestation::{verify_attestations, AttestationPolicy, AttestationVerdict};

        let dir = tempfile::tempdir().unwrap();
        let store = LayoutStore::create(dir.path()).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let config = br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]},"config":{}}"#;
        let manifest = serde_json::to_vec(&json!({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": Descriptor::of(OCI_CONFIG, config), "layers": []
        }))
        .unwrap();
        let digest = rt.block_on(async {
            store.put_blob(config.to_vec()).await.unwrap();
            store.put_manifest(&ManifestRef::Tag("v1".into()), OCI_MANIFEST, manifest).await.unwrap()
        });
        let decision = Decision { digest: Some(digest.clone()), ..passed(&["SLSA_BUILD_LEVEL_2"]) };
        let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256);
        let public = key.public_key();
        let signer = Signer::key(key);
        let locks = TagLocks::default();
        for format in [Format::Legacy, Format::Bundle] {
            let signed = rt
                .block_on(attach(
                    &store,
                    &store,
                    &decision,
                    &issuer(),
                    1_764_340_000,
                    &signer,
                    &Witnesses::none(),
                    format,
                    1_764_340_001,
                    &locks,
                ))
                .unwrap();
            assert_eq!((signed.len(), signed[0].format, &signed[0].digest), (1, format, &digest));
        }
        let checks = [crate::policy::PathCheck::parse("predicate.verificationResult=PASSED").unwrap()];
        let slsa = crate::policy::SlsaExpectations::default();
        let policy = AttestationPolicy {
            signer: crate::verify::ImageSigner::Key(&public),
            predicate_type: Some(SLSA_VERIFICATION_SUMMARY_V1),
            max_blob_bytes: 1 << 20,
            slsa: &slsa,
            checks: &checks,
            formats: crate::attachments::Formats::Any,
        };
        let verdict = rt.block_on(verify_attestations(&store, &store, &ManifestRef::Digest(digest.clone()), &policy));
        let Ok(AttestationVerdict::Verified { statements, rejected, .. }) = verdict else {
            panic!("not verified: {verdict:?}")
        };
        assert!(rejected.is_empty(), "{rejected:?}");
        let formats: Vec<Format> = statements.iter().map(|s| s.get().format).collect();
        assert_eq!(formats.len(), 2, "one per format: {formats:?}");
        let s = &statements[0].get().statement;
        assert_eq!(s["predicate"]["resourceUri"], format!("registry.example/team/app@{digest}"));
        assert_eq!(s["predicate"]["verifiedLevels"], json!(["SLSA_BUILD_LEVEL_2"]));

        // A decision that could not be checked writes nothing.
        let nothing = Decision::could_not_check("registry.example/team/app:1.0", None, Mode::Enforce, "down".into());
        let e = rt
            .block_on(attach(
                &store,
                &store,
                &nothing,
                &issuer(),
                1,
                &signer,
                &Witnesses::none(),
                Format::Legacy,
                1,
                &locks,
            ))
            .unwrap_err();
        assert!(matches!(e, AttachError::Summary(SummaryError::CouldNotCheck { .. })), "{e}");
    }
}
