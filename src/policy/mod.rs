//! The gate's rules: which images need which signers and attestations.
//!
//! - [`content`]: content checks on verified statements (SLSA expectations, `PATH=VALUE`,
//!   `PATH~=REGEX`), shared with `verify-attestation`;
//! - [`file`]: the policy file (YAML or JSON, `docs/policy.md`), parsed into the typed
//!   [`ImagePolicy`] in one pass: every value is checked where it is read, so an error names
//!   the field and its line, and a policy that does not parse is never used;
//! - [`pattern`]: image patterns (`registry/path/*`, `**`);
//! - [`VulnerabilityCondition`]: what a vulnerability report may contain.
//!
//! Pure: the files a policy names (keys, trusted roots) are read through [`file::Files`],
//! which the caller provides. Evaluating a rule against a registry is the gate's
//! ([`crate::gate`]).

mod content;
pub mod file;
pub mod pattern;

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

use serde_json::Value;

pub use content::{check_paths, check_slsa, lookup, Mismatch, PathCheck, SlsaExpectations};
pub use file::{parse, FileKind, Files, PolicyError};
pub use pattern::ImagePattern;

use crate::attachments::Formats;
use crate::digest::Digest;
use crate::identity::Matcher;
use crate::keys::PublicKey;
use crate::trust::Trust;
use crate::vulns::{self, Fix, Severity};

/// Whether a rule's failures deny or only warn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// A failure denies.
    #[default]
    Enforce,
    /// A failure is reported as a warning; the image is admitted.
    Warn,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Enforce => "enforce",
            Mode::Warn => "warn",
        })
    }
}

/// What happens to an image no rule matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum DefaultAction {
    /// Denied (the default).
    #[default]
    Deny,
    /// Admitted without checks.
    Allow,
}

/// A parsed, checked policy.
pub struct ImagePolicy {
    /// SHA-256 of the policy file as read.
    pub digest: Digest,
    /// For images no rule matches.
    pub default: DefaultAction,
    /// In file order; the first rule whose pattern matches an image applies to it.
    pub rules: Vec<Rule>,
}

impl ImagePolicy {
    /// The rule for an image named `name` (`registry/repository`, normalised as
    /// [`crate::reference::RegistryRef::name`] writes it): the first in file order with a
    /// matching pattern.
    pub fn rule_for(&self, name: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.images.iter().any(|p| p.matches(name)))
    }

    /// Whether any rule reads signatures or attestations with a transparency log or a
    /// certificate: those need trust material (the rule's, the policy's or the default).
    pub fn needs_default_trust(&self) -> bool {
        self.rules.iter().any(|r| r.trust.is_none() && r.authorities.iter().any(|a| a.signer.needs_trust()))
    }
}

/// One rule.
pub struct Rule {
    /// Its name (unique in the policy).
    pub name: String,
    /// The images it applies to.
    pub images: Vec<ImagePattern>,
    /// Enforce or warn.
    pub mode: Mode,
    /// Which signature formats are read.
    pub formats: Formats,
    /// How many of the authorities must have signed the image (1 ≤ threshold ≤ authorities).
    pub threshold: usize,
    /// Who may sign.
    pub authorities: Vec<Authority>,
    /// Attestations that must be attached and verify.
    pub attestations: Vec<AttestationRequirement>,
    /// SLSA levels a verification summary records when the rule passes.
    pub verified_levels: Vec<String>,
    /// The trusted root for this rule (its own, else the policy's); `None`: the default one
    /// in use where the policy is enforced.
    pub trust: Option<Arc<Trust>>,
}

/// A signer the rule accepts.
#[derive(Debug)]
pub struct Authority {
    /// Its name (unique in the rule).
    pub name: String,
    /// The key or identity.
    pub signer: AuthoritySigner,
}

/// How an authority signs.
#[derive(Debug)]
pub enum AuthoritySigner {
    /// A public key.
    Key {
        /// The key.
        key: PublicKey,
        /// Whether a transparency-log entry is required (cosign's default) or not.
        log: LogRequirement,
    },
    /// A Fulcio certificate for an identity from an issuer.
    Keyless {
        /// Certificate subject (SAN).
        subject: Matcher,
        /// OIDC issuer.
        issuer: Matcher,
    },
}

impl AuthoritySigner {
    /// Whether checking it needs a trusted root.
    pub fn needs_trust(&self) -> bool {
        !matches!(self, AuthoritySigner::Key { log: LogRequirement::Ignore, .. })
    }
}

/// Whether a key signature must be in a transparency log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogRequirement {
    /// A verified log entry (or timestamp) is required (cosign's `verify --key` default).
    #[default]
    Require,
    /// No log check (`--insecure-ignore-tlog`): nothing shows when the signature was made.
    Ignore,
}

/// An attestation a rule requires.
#[derive(Debug)]
pub struct AttestationRequirement {
    /// The predicate type URI.
    pub predicate_type: String,
    /// Indices into the rule's authorities of those who may sign it (all, unless limited).
    pub signed_by: Vec<usize>,
    /// SLSA provenance expectations.
    pub slsa: SlsaExpectations,
    /// `PATH=VALUE` / `PATH~=REGEX` checks.
    pub checks: Vec<PathCheck>,
    /// What a vulnerability report may contain.
    pub vulnerabilities: Option<VulnerabilityCondition>,
}

/// Whether a finding with a fix available denies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum FixableFindings {
    /// Findings with a fix are judged by severity alone.
    #[default]
    Allow,
    /// Any finding with a fix available denies, whatever its severity.
    Deny,
}

/// What a verified vulnerability report (cosign's vuln predicate, or a Trivy or Grype report
/// as predicate) may contain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VulnerabilityCondition {
    /// Findings above this severity deny.
    pub max_severity: Option<Severity>,
    /// Whether a finding with a fix denies.
    pub fixable: FixableFindings,
    /// Finding ids that are accepted whatever they are.
    pub ignore: BTreeSet<String>,
}

impl VulnerabilityCondition {
    /// Judges the statement's report: `Err` names the first findings that deny (at most 5),
    /// or why the report could not be read (a report that cannot be read never passes).
    pub fn check(&self, statement: &Value) -> Result<(), String> {
        let predicate = statement.get("predicate").unwrap_or(&Value::Null);
        let (_, findings) = vulns::findings(vulns::report_of(predicate)).map_err(|e| e.to_string())?;
        let denied: Vec<String> = findings
            .iter()
            .filter(|f| !self.ignore.contains(&f.id))
            .filter_map(|f| {
                if self.max_severity.is_some_and(|max| f.severity > max) {
                    Some(format!("{} ({})", f.id, f.severity))
                } else if self.fixable == FixableFindings::Deny && f.fix == Fix::Available {
                    Some(format!("{} ({}, fix available)", f.id, f.severity))
                } else {
                    None
                }
            })
            .collect();
        if denied.is_empty() {
            return Ok(());
        }
        let shown: Vec<&str> = denied.iter().take(5).map(String::as_str).collect();
        let more = if denied.len() > 5 { format!(" and {} more", denied.len() - 5) } else { String::new() };
        Err(format!("{} finding(s) not allowed: {}{more}", denied.len(), shown.join(", ")))
    }
}

/// The level a failed decision lists.
pub const FAILED_LEVEL: &str = "FAILED";

/// Why a list of verified levels cannot be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LevelError {
    /// An empty string.
    #[error("an empty level")]
    Empty,
    /// `FAILED` among the levels of a passing decision.
    #[error("{FAILED_LEVEL:?} is the level of a failed decision, not one a passing rule verifies")]
    Failed,
    /// The same level twice, or two levels of one SLSA track.
    #[error("{first:?} and {second:?}: at most one level per SLSA track (each level implies those below it)")]
    SameTrack {
        /// The first.
        first: String,
        /// The other.
        second: String,
    },
}

/// Checks levels a passing rule declares: none empty, not `FAILED`, and at most one per
/// SLSA track (`SLSA_<TRACK>_LEVEL_<N>`: "MUST NOT include more than one level per SLSA
/// track"). Other values (verified properties, custom values) may appear once each.
pub fn check_levels(levels: &[String]) -> Result<(), LevelError> {
    let track = |l: &str| l.strip_prefix("SLSA_").and_then(|r| r.rsplit_once("_LEVEL_")).map(|(t, _)| t.to_owned());
    let mut seen: Vec<(&str, Option<String>)> = Vec::new();
    for l in levels {
        if l.is_empty() {
            return Err(LevelError::Empty);
        }
        if l == FAILED_LEVEL {
            return Err(LevelError::Failed);
        }
        let t = track(l);
        let clash = seen.iter().find(|(other, ot)| *other == l.as_str() || (t.is_some() && *ot == t));
        if let Some((other, _)) = clash {
            return Err(LevelError::SameTrack { first: (*other).to_owned(), second: l.clone() });
        }
        seen.push((l, t));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn report() -> Value {
        json!({"predicate": {"scanner": {"uri": "trivy", "result": {"Results": [{"Vulnerabilities": [
            {"VulnerabilityID": "CVE-C", "Severity": "CRITICAL"},
            {"VulnerabilityID": "CVE-L", "Severity": "LOW", "FixedVersion": "1.1"}]}]}}}})
    }

    #[test]
    fn vulnerability_conditions() {
        let none_critical = VulnerabilityCondition {
            max_severity: Some(Severity::High),
            fixable: FixableFindings::Allow,
            ignore: BTreeSet::new(),
        };
        let e = none_critical.check(&report()).unwrap_err();
        assert!(e.contains("CVE-C (critical)"), "{e}");
        let ignored = VulnerabilityCondition { ignore: ["CVE-C".to_owned()].into(), ..none_critical.clone() };
        assert!(ignored.check(&report()).is_ok());
        let no_fixable = VulnerabilityCondition { fixable: FixableFindings::Deny, ..ignored };
        assert!(no_fixable.check(&report()).unwrap_err().contains("CVE-L (low, fix available)"));
        let unreadable = json!({"predicate": {"something": "else"}});
        assert!(none_critical.check(&unreadable).is_err(), "a report that cannot be read never passes");
    }
}
