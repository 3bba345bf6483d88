//! Evaluating one image against a policy: the rule that matches it, each authority's
//! signatures and each required attestation, verified by [`crate::verify`] against one store.
//! A requirement holds only on `Verified` values; a definite "no" anywhere fails the image, and
//! otherwise a check that could not be made leaves it unchecked (denied when enforced).

use futures_util::future::join_all;

use super::{Decision, Outcome};
use crate::attachments::Formats;
use crate::digest::Digest;
use crate::oci::{ManifestRef, Store};
use crate::payload::Annotations;
use crate::policy::{
    AttestationRequirement, Authority, AuthoritySigner, DefaultAction, ImagePolicy, LogRequirement, Mode, Rule,
};
use crate::reference::RegistryRef;
use crate::trust::Trust;
use crate::verify::attestation::{self, AttestationPolicy, AttestationVerdict};
use crate::verify::{self, ImageSigner, PayloadHints, Problem, Verdict};

/// Size limits for what is read while evaluating.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest signature payload or bundle read.
    pub max_blob_bytes: u64,
    /// Largest attestation envelope or bundle read.
    pub max_envelope_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_blob_bytes: verify::DEFAULT_MAX_BLOB_BYTES, max_envelope_bytes: 16 << 20 }
    }
}

/// What became of one requirement.
enum Requirement {
    Holds,
    No(String),
    Unchecked(String),
}

/// Evaluates `image` (resolved to `digest`) against `policy`, reading signatures and
/// attestations from `store` (the image's repository). `default_trust` is the trusted root
/// for rules that name none.
pub async fn evaluate<S: Store>(
    store: &S,
    image: &RegistryRef,
    digest: &Digest,
    policy: &ImagePolicy,
    default_trust: Option<&Trust>,
    limits: Limits,
) -> Decision {
    let shown = image.to_string();
    let name = image.name();
    let Some(rule) = policy.rule_for(&name) else {
        return unmatched(shown, Some(digest.clone()), &name, policy.default);
    };
    let trust = rule.trust.as_deref().or(default_trust);
    let hints = PayloadHints { names: vec![name.clone()], tag: image.selector().tag().map(str::to_owned) };
    let signers: Vec<Result<ImageSigner<'_>, String>> = rule.authorities.iter().map(|a| signer(a, trust)).collect();

    let signatures = join_all(signers.iter().map(|s| check_signatures(store, digest, s, rule.formats, limits, &hints)));
    let attestations =
        join_all(rule.attestations.iter().map(|req| check_attestation(store, digest, rule, req, &signers, limits)));
    let (signatures, attestations) = futures_util::join!(signatures, attestations);

    let mut reasons = Vec::new();
    let mut unchecked = Vec::new();
    let mut signed_by = Vec::new();
    for (a, check) in rule.authorities.iter().zip(signatures) {
        match check {
            Requirement::Holds => signed_by.push(a.name.clone()),
            Requirement::No(why) => reasons.push(format!("authority {:?}: {why}", a.name)),
            Requirement::Unchecked(why) => unchecked.push(format!("authority {:?}: {why}", a.name)),
        }
    }
    // Threshold: enough authorities signed; a "no" when even the unchecked ones could not
    // make up the number.
    let short = signed_by.len() < rule.threshold;
    let signatures_fail = short && signed_by.len() + unchecked.len() < rule.threshold;
    let mut definite = Vec::new();
    if signatures_fail {
        definite.push(format!(
            "{} of the {} signature(s) required verified ({})",
            signed_by.len(),
            rule.threshold,
            reasons.join("; ")
        ));
    }
    let mut attested = Vec::new();
    for (req, check) in rule.attestations.iter().zip(attestations) {
        match check {
            Requirement::Holds => attested.push(req.predicate_type.clone()),
            Requirement::No(why) => definite.push(format!("attestation {}: {why}", req.predicate_type)),
            Requirement::Unchecked(why) => unchecked.push(format!("attestation {}: {why}", req.predicate_type)),
        }
    }
    let outcome = if !definite.is_empty() {
        definite.extend(unchecked.into_iter().map(|u| format!("could not check {u}")));
        Outcome::Failed { reasons: definite }
    } else if short || attested.len() < rule.attestations.len() {
        Outcome::CouldNotCheck { reason: unchecked.join("; ") }
    } else {
        Outcome::Passed
    };
    let levels = if outcome == Outcome::Passed { rule.verified_levels.clone() } else { Vec::new() };
    decision(shown, Some(digest.clone()), Some(rule.name.clone()), rule.mode, outcome, signed_by, attested, levels)
}

/// The decision about an image no rule matches: the policy's default, no check made.
pub(crate) fn unmatched(image: String, digest: Option<Digest>, name: &str, default: DefaultAction) -> Decision {
    let outcome = match default {
        DefaultAction::Allow => Outcome::Passed,
        DefaultAction::Deny => Outcome::Failed {
            reasons: vec![format!("no rule of the policy matches {name}, and the policy denies such images")],
        },
    };
    decision(image, digest, None, Mode::Enforce, outcome, vec![], vec![], vec![])
}

#[allow(clippy::too_many_arguments)]
fn decision(
    image: String,
    digest: Option<Digest>,
    rule: Option<String>,
    mode: Mode,
    outcome: Outcome,
    authorities: Vec<String>,
    attestations: Vec<String>,
    verified_levels: Vec<String>,
) -> Decision {
    Decision { image, digest, rule, mode, outcome, authorities, attestations, verified_levels }
}

/// How an authority's signatures are checked.
fn signer<'a>(a: &'a Authority, trust: Option<&'a Trust>) -> Result<ImageSigner<'a>, String> {
    let no_trust =
        || "no trusted root: name one in the policy (trustedRoot) or run `sigil trusted-root update`".to_owned();
    Ok(match &a.signer {
        AuthoritySigner::Key { key, log: LogRequirement::Ignore } => ImageSigner::Key(key),
        AuthoritySigner::Key { key, log: LogRequirement::Require } => {
            ImageSigner::KeyWithEvidence { key, trust: trust.ok_or_else(no_trust)? }
        }
        AuthoritySigner::Keyless { subject, issuer } => {
            ImageSigner::Keyless { identity: subject, issuer, trust: trust.ok_or_else(no_trust)? }
        }
    })
}

/// The first few reasons signatures or attestations were rejected, for a message.
fn rejections(rejected: &[verify::Examined]) -> String {
    let mut out: Vec<String> = rejected
        .iter()
        .take(3)
        .map(|e| match &e.problem {
            Problem::Rejected(why) => format!("{} {}: {why}", e.format, e.layer),
            Problem::CouldNotCheck(why) => format!("{} {}: could not check: {why}", e.format, e.layer),
        })
        .collect();
    if rejected.len() > 3 {
        out.push(format!("and {} more", rejected.len() - 3));
    }
    out.join("; ")
}

async fn check_signatures<S: Store>(
    store: &S,
    digest: &Digest,
    signer: &Result<ImageSigner<'_>, String>,
    formats: Formats,
    limits: Limits,
    hints: &PayloadHints,
) -> Requirement {
    let signer = match signer {
        Ok(s) => *s,
        Err(why) => return Requirement::Unchecked(why.clone()),
    };
    let none = Annotations::new();
    let policy = verify::Policy { signer, annotations: &none, max_blob_bytes: limits.max_blob_bytes, formats };
    match verify::verify_digest(store, digest, &policy, hints).await {
        Ok(Verdict::Verified { .. }) => Requirement::Holds,
        Ok(Verdict::NoSignatures { .. }) => Requirement::No("the image has no signatures".into()),
        Ok(Verdict::NoMatchingSignature { rejected, .. }) => {
            Requirement::No(format!("no signature verified ({})", rejections(&rejected)))
        }
        Ok(Verdict::ImageNotFound) => Requirement::No("image not found".into()),
        Err(e) => Requirement::Unchecked(e.to_string()),
    }
}

async fn check_attestation<S: Store>(
    store: &S,
    digest: &Digest,
    rule: &Rule,
    req: &AttestationRequirement,
    signers: &[Result<ImageSigner<'_>, String>],
    limits: Limits,
) -> Requirement {
    let reference = ManifestRef::Digest(digest.clone());
    let results = join_all(req.signed_by.iter().map(|&i| {
        let reference = &reference;
        async move {
            let signer = match &signers[i] {
                Ok(s) => *s,
                Err(why) => return (i, Requirement::Unchecked(why.clone())),
            };
            let policy = AttestationPolicy {
                signer,
                predicate_type: Some(&req.predicate_type),
                max_blob_bytes: limits.max_envelope_bytes,
                slsa: &req.slsa,
                checks: &req.checks,
                formats: rule.formats,
            };
            let check = match attestation::verify_attestations(store, store, reference, &policy).await {
                Ok(AttestationVerdict::Verified { statements, .. }) => match &req.vulnerabilities {
                    None => Requirement::Holds,
                    Some(condition) => {
                        let judged: Vec<Result<(), String>> =
                            statements.iter().map(|s| condition.check(&s.get().statement)).collect();
                        if judged.iter().any(Result::is_ok) {
                            Requirement::Holds
                        } else {
                            let why: Vec<String> = judged.into_iter().filter_map(Result::err).take(2).collect();
                            Requirement::No(why.join("; "))
                        }
                    }
                },
                Ok(AttestationVerdict::NoAttestations { .. }) => Requirement::No("none attached".into()),
                Ok(AttestationVerdict::NoMatchingAttestation { rejected, .. }) => {
                    Requirement::No(format!("none verified ({})", rejections(&rejected)))
                }
                Ok(AttestationVerdict::ImageNotFound) => Requirement::No("image not found".into()),
                Err(e) => Requirement::Unchecked(e.to_string()),
            };
            (i, check)
        }
    }))
    .await;
    let mut no = Vec::new();
    let mut unchecked = Vec::new();
    for (i, check) in results {
        let name = &rule.authorities[i].name;
        match check {
            Requirement::Holds => return Requirement::Holds,
            Requirement::No(why) => no.push(format!("signed by {name:?}: {why}")),
            Requirement::Unchecked(why) => unchecked.push(format!("signed by {name:?}: {why}")),
        }
    }
    if unchecked.is_empty() {
        Requirement::No(no.join("; "))
    } else {
        Requirement::Unchecked(unchecked.join("; "))
    }
}
