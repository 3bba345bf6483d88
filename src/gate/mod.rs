//! The deploy gate: what it decided about an image, and the seam ([`Judge`]) between the
//! decision (policy evaluation over verified signatures and attestations, a flow generic over
//! [`crate::oci::Store`]) and its front ends: `sigil gate` on the command line and the
//! Kubernetes admission webhook ([`webhook`]).
//!
//! A [`Decision`] is built only by the gate's evaluation; the front ends read it and turn it
//! into an exit code or an admission answer ([`Decision::admission`]). Nothing here allows on
//! error: a check that could not be made denies under an enforced rule. A decision that was
//! reached can be signed and attached as a SLSA verification summary ([`summary`]).

use serde::Serialize;

pub mod admission;
pub mod cache;
pub mod evaluate;
pub mod judge;
pub mod metrics;
pub mod summary;
pub mod tls;
pub mod webhook;

pub use evaluate::Limits;
pub use judge::{PolicyFiles, PolicyJudge, RegistryStores, Stores};

use crate::digest::Digest;
pub use crate::policy::Mode;
use crate::reference::RegistryRef;

/// What the checks of an image came to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "result", rename_all = "kebab-case")]
pub enum Outcome {
    /// Every requirement of the rule holds (or no rule matched and the policy's default
    /// allows).
    Passed,
    /// Verification said no: each reason names the requirement and why.
    Failed {
        /// Why, one line each.
        reasons: Vec<String>,
    },
    /// The checks could not be made (registry unreachable, trust material unusable, …).
    CouldNotCheck {
        /// Why.
        reason: String,
    },
}

/// The gate's decision about one image under one policy.
#[derive(Debug, Clone, Serialize)]
pub struct Decision {
    pub(crate) image: String,
    pub(crate) digest: Option<Digest>,
    pub(crate) rule: Option<String>,
    pub(crate) mode: Mode,
    pub(crate) outcome: Outcome,
    /// Authorities whose signature verified.
    pub(crate) authorities: Vec<String>,
    /// Required attestations that verified (predicate type URIs).
    pub(crate) attestations: Vec<String>,
    /// The SLSA levels the matched rule declares verified when it passes (for a
    /// verification summary's `verifiedLevels`); empty unless passed.
    pub(crate) verified_levels: Vec<String>,
}

/// What an admission front end does with a decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// Admit.
    Allow,
    /// Admit, with this warning (a `warn` rule that failed).
    Warn(String),
    /// Refuse, with this message.
    Deny(String),
}

impl Decision {
    /// The image as it was named.
    pub fn image(&self) -> &str {
        &self.image
    }
    /// The digest it resolved to, if it did.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }
    /// The name of the rule that matched, or `None` for the policy's default.
    pub fn rule(&self) -> Option<&str> {
        self.rule.as_deref()
    }
    /// The matched rule's mode.
    pub fn mode(&self) -> Mode {
        self.mode
    }
    /// What the checks came to.
    pub fn outcome(&self) -> &Outcome {
        &self.outcome
    }
    /// Authorities whose signature verified.
    pub fn authorities(&self) -> &[String] {
        &self.authorities
    }
    /// Required attestations that verified.
    pub fn attestations(&self) -> &[String] {
        &self.attestations
    }
    /// The SLSA levels verified (the rule's `verifiedLevels`, when it passed).
    pub fn verified_levels(&self) -> &[String] {
        &self.verified_levels
    }

    /// Admit, warn or deny: a failure or a check that could not be made denies under an
    /// enforced rule and warns under a `warn` rule.
    pub fn admission(&self) -> Admission {
        let rule = self.rule.as_deref().map(|r| format!("rule {r:?}: ")).unwrap_or_default();
        let why = match &self.outcome {
            Outcome::Passed => return Admission::Allow,
            Outcome::Failed { reasons } => format!("{}: {rule}{}", self.image, reasons.join("; ")),
            Outcome::CouldNotCheck { reason } => format!("{}: {rule}could not check: {reason}", self.image),
        };
        match self.mode {
            Mode::Enforce => Admission::Deny(why),
            Mode::Warn => Admission::Warn(why),
        }
    }

    /// The decision about something that is not an image reference: it fails (no rule can
    /// apply to it).
    pub fn not_an_image(image: &str, why: &str) -> Self {
        Decision {
            outcome: Outcome::Failed { reasons: vec![format!("not an image reference: {why}")] },
            ..Decision::could_not_check(image, None, Mode::Enforce, String::new())
        }
    }

    /// A decision for an image whose checks could not start (bad reference, digest not
    /// resolved): denied under enforcement.
    pub(crate) fn could_not_check(image: &str, rule: Option<String>, mode: Mode, reason: String) -> Self {
        Decision {
            image: image.to_owned(),
            digest: None,
            rule,
            mode,
            outcome: Outcome::CouldNotCheck { reason },
            authorities: Vec::new(),
            attestations: Vec::new(),
            verified_levels: Vec::new(),
        }
    }
}

/// Why an image reference could not be resolved to a digest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResolveError {
    /// The registry says the image does not exist.
    #[error("{0}: image not found")]
    NotFound(String),
    /// The registry could not be asked, or answered badly.
    #[error("{image}: could not resolve the digest: {reason}")]
    Unreachable {
        /// The image.
        image: String,
        /// Why.
        reason: String,
    },
}

/// The seam between the gate's evaluation and its front ends. One value holds one compiled
/// policy (and its trust material); reloading the policy makes a new one.
pub trait Judge: Send + Sync + 'static {
    /// The SHA-256 of the policy file this judge enforces (part of every cache key).
    fn policy_digest(&self) -> &Digest;

    /// The digest `image` names now: the reference's own digest, or the registry's answer for
    /// its tag.
    fn resolve(&self, image: &RegistryRef) -> impl std::future::Future<Output = Result<Digest, ResolveError>> + Send;

    /// The decision about `image` at `digest` (signatures, attestations, the rule's mode). It
    /// never fails: a check that could not be made is [`Outcome::CouldNotCheck`].
    fn judge(&self, image: &RegistryRef, digest: &Digest) -> impl std::future::Future<Output = Decision> + Send;

    /// The decision about `image` when it needs no registry at all (no rule matches it: the
    /// policy's default decides), else `None`. Asked before anything is resolved, so that an
    /// image no rule applies to never waits on its registry.
    fn without_registry(&self, image: &RegistryRef) -> Option<Decision>;

    /// The decision about an image whose digest could not be resolved: its rule's mode
    /// applies (a `warn` rule warns), an image that does not exist fails, and under a policy
    /// whose default allows, an image no rule matches passes (it needed no checks).
    fn unresolved(&self, image: &RegistryRef, error: &ResolveError) -> Decision;
}

/// Told of each decision a front end acted on (the webhook: every image of a review that is
/// not a dry run), e.g. to write a verification summary. Must not block: the answer waits.
pub trait OnDecision: Send + Sync + 'static {
    /// `decision` about `image` was acted on, under the policy whose file has digest `policy`.
    fn decided(&self, image: &RegistryRef, decision: &Decision, policy: &Digest);
}

/// What pinning writes for an image written `written` (parsed as `image`) and judged at
/// `digest`: `name[:tag]@digest`, or `None` when the reference already names a digest.
/// `gate --pin` and the mutating webhook write the same.
pub fn pinned(image: &RegistryRef, written: &str, digest: &Digest) -> Option<String> {
    image.selector().digest().is_none().then(|| format!("{written}@{digest}"))
}

/// Resolves and judges one image.
pub async fn decide<J: Judge>(judge: &J, image: &RegistryRef) -> Decision {
    if let Some(d) = judge.without_registry(image) {
        return d;
    }
    match judge.resolve(image).await {
        Ok(digest) => judge.judge(image, &digest).await,
        Err(e) => judge.unresolved(image, &e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decision(mode: Mode, outcome: Outcome) -> Decision {
        Decision {
            image: "r.example/app:1".into(),
            digest: None,
            rule: Some("prod".into()),
            mode,
            outcome,
            authorities: vec![],
            attestations: vec![],
            verified_levels: vec![],
        }
    }

    #[test]
    fn enforced_failures_deny_and_warn_rules_warn() {
        assert_eq!(decision(Mode::Enforce, Outcome::Passed).admission(), Admission::Allow);
        let failed = Outcome::Failed { reasons: vec!["no signature by \"release\"".into()] };
        assert!(
            matches!(decision(Mode::Enforce, failed.clone()).admission(), Admission::Deny(m) if m.contains("rule \"prod\""))
        );
        assert!(matches!(decision(Mode::Warn, failed).admission(), Admission::Warn(_)));
        let down = Outcome::CouldNotCheck { reason: "registry unreachable".into() };
        assert!(
            matches!(decision(Mode::Enforce, down).admission(), Admission::Deny(m) if m.contains("could not check"))
        );
    }
}
