//! The policy file: YAML (or JSON, which YAML reads), one document, described in
//! `docs/policy.md` and `docs/policy.schema.json`.
//!
//! Parsed in one pass into [`ImagePolicy`]: every value is turned into its type where it is
//! read (patterns, regular expressions, keys, trusted roots, predicate types), so that an error
//! carries the field's path and line from the YAML reader ("line 12, column 9:
//! rules[0].authorities[1].key: …"). Unknown fields, a field given twice and a policy of
//! another version are errors, never ignored.
//!
//! The files a policy names (public keys, trusted roots) are read during that pass through
//! [`Files`], which the caller provides; it is installed for the duration of [`parse`] on the
//! calling thread (serde gives a field's reader no other context).

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer};

use super::{
    AttestationRequirement, Authority, AuthoritySigner, DefaultAction, FixableFindings, ImagePattern, ImagePolicy,
    LogRequirement, Mode, PathCheck, Rule, SlsaExpectations, VulnerabilityCondition,
};
use crate::attachments::{Format, Formats};
use crate::digest::Digest;
use crate::identity::Matcher;
use crate::keys::PublicKey;
use crate::trust::Trust;
use crate::vulns::Severity;

/// Largest policy file read.
pub const MAX_POLICY_BYTES: usize = 1 << 20;

/// What a file named by the policy holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// A PEM public key.
    PublicKey,
    /// A Sigstore trusted root (JSON).
    TrustedRoot,
}

/// Reads the files a policy names, by the path written in it (the caller decides what a
/// relative path is relative to, and bounds the read).
pub trait Files: Send + Sync {
    /// The file's bytes, or why not.
    fn read(&self, path: &str, kind: FileKind) -> Result<Vec<u8>, String>;
}

/// A policy that names no files (and refuses any it does).
pub struct NoFiles;

impl Files for NoFiles {
    fn read(&self, path: &str, _: FileKind) -> Result<Vec<u8>, String> {
        Err(format!("{path}: this policy may not name files; put the key inline (pem)"))
    }
}

/// Why a policy was refused: the field path and message, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct PolicyError {
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// 1-based column, when known.
    pub column: Option<usize>,
    /// The field path and what is wrong.
    pub message: String,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (Some(l), Some(c)) => write!(f, "line {l}, column {c}: {}", self.message),
            (Some(l), None) => write!(f, "line {l}: {}", self.message),
            _ => f.write_str(&self.message),
        }
    }
}

impl PolicyError {
    fn plain(message: impl Into<String>) -> Self {
        PolicyError { line: None, column: None, message: message.into() }
    }
}

thread_local! {
    static FILES: RefCell<Option<Arc<dyn Files>>> = const { RefCell::new(None) };
}

/// Installs `files` for this thread until dropped.
struct FilesInstalled;

impl FilesInstalled {
    fn new(files: Arc<dyn Files>) -> Self {
        FILES.with(|f| *f.borrow_mut() = Some(files));
        FilesInstalled
    }
}

impl Drop for FilesInstalled {
    fn drop(&mut self) {
        FILES.with(|f| *f.borrow_mut() = None);
    }
}

fn read_file(path: &str, kind: FileKind) -> Result<Vec<u8>, String> {
    let files = FILES.with(|f| f.borrow().clone()).ok_or_else(|| "no file access while parsing".to_owned())?;
    files.read(path, kind)
}

/// Parses and checks a policy file. `files` reads the keys and trusted roots it names.
pub fn parse(bytes: &[u8], files: Arc<dyn Files>) -> Result<ImagePolicy, PolicyError> {
    if bytes.len() > MAX_POLICY_BYTES {
        return Err(PolicyError::plain(format!("the policy is larger than {MAX_POLICY_BYTES} bytes")));
    }
    let text = std::str::from_utf8(bytes).map_err(|e| PolicyError::plain(format!("the policy is not UTF-8: {e}")))?;
    let doc: Document = {
        let _installed = FilesInstalled::new(files);
        serde_yaml_ng::from_str(text).map_err(|e| {
            let location = e.location();
            let message = e.to_string();
            // The reader appends "at line L column C"; it is shown first instead.
            let message = match message.rfind(" at line ") {
                Some(i) if location.is_some() => message[..i].to_owned(),
                _ => message,
            };
            PolicyError { line: location.as_ref().map(|l| l.line()), column: location.map(|l| l.column()), message }
        })?
    };
    let mut rules = doc.rules.0;
    for rule in &mut rules {
        if rule.trust.is_none() {
            rule.trust = doc.trusted_root.as_ref().map(|t| t.0.clone());
        }
    }
    Ok(ImagePolicy { digest: Digest::sha256(bytes), default: doc.default, rules })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Document {
    #[allow(dead_code)]
    api_version: ApiVersion,
    #[allow(dead_code)]
    kind: DocumentKind,
    #[serde(default)]
    default: DefaultAction,
    #[serde(default)]
    trusted_root: Option<TrustFile>,
    rules: RulesDoc,
}

/// The rules, each name once.
#[derive(Deserialize)]
#[serde(try_from = "Vec<RuleDoc>")]
struct RulesDoc(Vec<Rule>);

impl TryFrom<Vec<RuleDoc>> for RulesDoc {
    type Error = String;
    fn try_from(rules: Vec<RuleDoc>) -> Result<Self, String> {
        let mut names = BTreeSet::new();
        for RuleDoc(r) in &rules {
            if !names.insert(r.name.as_str()) {
                return Err(format!("rules: another rule is already named {:?}", r.name));
            }
        }
        Ok(RulesDoc(rules.into_iter().map(|r| r.0).collect()))
    }
}

#[derive(Deserialize)]
enum ApiVersion {
    #[serde(rename = "sigil/v1")]
    V1,
}

#[derive(Deserialize)]
enum DocumentKind {
    ImagePolicy,
}

/// A trusted root named by path.
struct TrustFile(Arc<Trust>);

impl<'de> Deserialize<'de> for TrustFile {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let path = String::deserialize(d)?;
        let bytes = read_file(&path, FileKind::TrustedRoot).map_err(D::Error::custom)?;
        Trust::from_bytes(&bytes, &path).map(|t| TrustFile(Arc::new(t))).map_err(|e| D::Error::custom(e.to_string()))
    }
}

impl<'de> Deserialize<'de> for ImagePattern {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        ImagePattern::parse(&String::deserialize(d)?).map_err(D::Error::custom)
    }
}

/// A check written `PATH=VALUE` or `PATH~=REGEX`.
struct CheckDoc(PathCheck);

impl<'de> Deserialize<'de> for CheckDoc {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        PathCheck::parse(&String::deserialize(d)?).map(CheckDoc).map_err(D::Error::custom)
    }
}

/// An anchored regular expression.
struct RegexDoc(Matcher);

impl<'de> Deserialize<'de> for RegexDoc {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Matcher::regex(&s)
            .map(RegexDoc)
            .map_err(|e| D::Error::custom(format!("{s:?} is not a regular expression: {e}")))
    }
}

/// A predicate type: a `--type` name or a URI.
struct PredicateTypeDoc(String);

impl<'de> Deserialize<'de> for PredicateTypeDoc {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        crate::predicates::PredicateType::parse(&s)
            .map(|t| PredicateTypeDoc(t.uri))
            .map_err(|e| D::Error::custom(e.to_string()))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFields {
    path: Option<String>,
    pem: Option<String>,
}

#[derive(Deserialize)]
#[serde(try_from = "KeyFields")]
struct KeyDoc(PublicKey);

impl TryFrom<KeyFields> for KeyDoc {
    type Error = String;
    fn try_from(k: KeyFields) -> Result<Self, String> {
        let (bytes, what) = match (k.path, k.pem) {
            (Some(p), None) => (read_file(&p, FileKind::PublicKey)?, p),
            (None, Some(pem)) => (pem.into_bytes(), "the inline pem".to_owned()),
            _ => return Err("give exactly one of path (a PEM file) and pem (the key inline)".into()),
        };
        PublicKey::from_pem(&bytes).map(KeyDoc).map_err(|e| format!("{what}: not a public key: {e}"))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct KeylessFields {
    issuer: Option<String>,
    issuer_reg_exp: Option<RegexDoc>,
    subject: Option<String>,
    subject_reg_exp: Option<RegexDoc>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct AuthorityFields {
    name: String,
    key: Option<KeyDoc>,
    #[serde(default)]
    transparency_log: Option<LogRequirement>,
    keyless: Option<KeylessFields>,
}

#[derive(Deserialize)]
#[serde(try_from = "AuthorityFields")]
struct AuthorityDoc(Authority);

impl TryFrom<AuthorityFields> for AuthorityDoc {
    type Error = String;
    fn try_from(a: AuthorityFields) -> Result<Self, String> {
        if a.name.is_empty() {
            return Err("an authority needs a name".into());
        }
        let one = |exact: Option<String>, re: Option<RegexDoc>, what: &str| match (exact, re) {
            (Some(e), None) => Ok(Matcher::Exact(e)),
            (None, Some(RegexDoc(m))) => Ok(m),
            _ => Err(format!("authority {:?}: give exactly one of {what} and {what}RegExp", a.name)),
        };
        let signer = match (a.key, a.keyless) {
            (Some(KeyDoc(key)), None) => AuthoritySigner::Key { key, log: a.transparency_log.unwrap_or_default() },
            (None, Some(k)) => {
                if a.transparency_log.is_some() {
                    return Err(format!(
                        "authority {:?}: transparencyLog is for keys; keyless signatures always need their log entry",
                        a.name
                    ));
                }
                AuthoritySigner::Keyless {
                    subject: one(k.subject, k.subject_reg_exp, "subject")?,
                    issuer: one(k.issuer, k.issuer_reg_exp, "issuer")?,
                }
            }
            _ => return Err(format!("authority {:?}: give exactly one of key and keyless", a.name)),
        };
        Ok(AuthorityDoc(Authority { name: a.name, signer }))
    }
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct SlsaDoc {
    builder_id: Option<String>,
    source_uri: Option<String>,
    source_branch: Option<String>,
    source_tag: Option<String>,
    source_digest: Option<String>,
}

/// A severity name, in any case; unknown words are errors (a typo must not loosen a rule).
struct SeverityDoc(Severity);

impl<'de> Deserialize<'de> for SeverityDoc {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        match Severity::parse(&s) {
            Some(sev) => Ok(SeverityDoc(sev)),
            None => Err(D::Error::custom(format!(
                "{s:?} is not a severity (unknown, negligible, low, medium, high, critical)"
            ))),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct VulnerabilitiesDoc {
    max_severity: Option<SeverityDoc>,
    #[serde(default)]
    fixable: FixableFindings,
    #[serde(default)]
    ignore: BTreeSet<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct AttestationFields {
    predicate_type: PredicateTypeDoc,
    #[serde(default)]
    signed_by: Vec<String>,
    #[serde(default)]
    slsa: SlsaDoc,
    #[serde(default)]
    checks: Vec<CheckDoc>,
    vulnerabilities: Option<VulnerabilitiesDoc>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RuleFields {
    name: String,
    images: Vec<ImagePattern>,
    #[serde(default)]
    mode: Mode,
    #[serde(default)]
    formats: Option<Vec<Format>>,
    #[serde(default)]
    threshold: Option<usize>,
    authorities: Vec<AuthorityDoc>,
    #[serde(default)]
    attestations: Vec<AttestationFields>,
    #[serde(default)]
    verified_levels: Vec<String>,
    #[serde(default)]
    trusted_root: Option<TrustFile>,
}

#[derive(Deserialize)]
#[serde(try_from = "RuleFields")]
struct RuleDoc(Rule);

impl TryFrom<RuleFields> for RuleDoc {
    type Error = String;
    fn try_from(r: RuleFields) -> Result<Self, String> {
        let name = &r.name;
        if name.is_empty() {
            return Err("a rule needs a name".into());
        }
        if r.images.is_empty() {
            return Err(format!("rule {name:?}: images must list at least one pattern"));
        }
        if r.authorities.is_empty() {
            return Err(format!("rule {name:?}: authorities must list at least one key or identity"));
        }
        let authorities: Vec<Authority> = r.authorities.into_iter().map(|a| a.0).collect();
        let mut seen = BTreeSet::new();
        let mut keys = BTreeSet::new();
        for a in &authorities {
            if !seen.insert(a.name.as_str()) {
                return Err(format!("rule {name:?}: two authorities are named {:?}", a.name));
            }
            // One key under two names would let one signature count twice toward the threshold.
            if let AuthoritySigner::Key { key, .. } = &a.signer {
                let der = key.to_der().map_err(|e| format!("rule {name:?}: authority {:?}: {e}", a.name))?;
                if !keys.insert(der) {
                    return Err(format!("rule {name:?}: authority {:?} has the same key as another authority", a.name));
                }
            }
        }
        let threshold = r.threshold.unwrap_or(1);
        if threshold == 0 || threshold > authorities.len() {
            return Err(format!(
                "rule {name:?}: threshold {threshold} must be between 1 and the number of authorities ({})",
                authorities.len()
            ));
        }
        let formats = match r.formats.as_deref() {
            None => Formats::Any,
            Some([one]) => Formats::Only(*one),
            Some([a, b]) if a != b => Formats::Any,
            Some(_) => return Err(format!("rule {name:?}: formats lists legacy, bundle or both, each once")),
        };
        super::check_levels(&r.verified_levels).map_err(|e| format!("rule {name:?}: verifiedLevels: {e}"))?;
        let mut attestations = Vec::with_capacity(r.attestations.len());
        for a in r.attestations {
            let signed_by = if a.signed_by.is_empty() {
                (0..authorities.len()).collect()
            } else {
                a.signed_by
                    .iter()
                    .map(|n| {
                        authorities.iter().position(|x| &x.name == n).ok_or_else(|| {
                            format!("rule {name:?}: attestation {:?} is signedBy {n:?}, which is not one of its authorities", a.predicate_type.0)
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?
            };
            attestations.push(AttestationRequirement {
                predicate_type: a.predicate_type.0,
                signed_by,
                slsa: SlsaExpectations {
                    builder_id: a.slsa.builder_id,
                    source_uri: a.slsa.source_uri,
                    source_branch: a.slsa.source_branch,
                    source_tag: a.slsa.source_tag,
                    source_digest: a.slsa.source_digest,
                },
                checks: a.checks.into_iter().map(|c| c.0).collect(),
                vulnerabilities: a.vulnerabilities.map(|v| VulnerabilityCondition {
                    max_severity: v.max_severity.map(|s| s.0),
                    fixable: v.fixable,
                    ignore: v.ignore,
                }),
            });
        }
        Ok(RuleDoc(Rule {
            name: r.name,
            images: r.images,
            mode: r.mode,
            formats,
            threshold,
            authorities,
            attestations,
            verified_levels: r.verified_levels,
            trust: r.trusted_root.map(|t| t.0),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::AuthoritySigner;
    use std::path::Path;

    /// Reads relative to a test data folder.
    struct Dir(std::path::PathBuf);

    impl Files for Dir {
        fn read(&self, path: &str, _: FileKind) -> Result<Vec<u8>, String> {
            std::fs::read(self.0.join(path)).map_err(|e| format!("{path}: {e}"))
        }
    }

    fn testdata(rel: &str) -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/policy").join(rel)
    }

    fn parse_file(rel: &str) -> Result<ImagePolicy, PolicyError> {
        let path = testdata(rel);
        let bytes = std::fs::read(&path).unwrap();
        parse(&bytes, Arc::new(Dir(path.parent().unwrap().to_owned())))
    }

    #[test]
    fn every_field_of_the_format_is_read() {
        let p = parse_file("full.yaml").unwrap();
        assert_eq!(p.default, DefaultAction::Deny);
        assert_eq!(p.rules.len(), 2);
        let prod = &p.rules[0];
        assert_eq!(
            (prod.name.as_str(), prod.mode, prod.threshold, prod.formats),
            ("prod", Mode::Enforce, 2, Formats::Any)
        );
        assert_eq!(prod.verified_levels, ["SLSA_BUILD_LEVEL_3"]);
        assert!(prod.trust.is_some(), "the policy's trusted root applies to a rule without its own");
        assert!(matches!(prod.authorities[0].signer, AuthoritySigner::Key { log: LogRequirement::Require, .. }));
        assert!(matches!(prod.authorities[1].signer, AuthoritySigner::Key { log: LogRequirement::Ignore, .. }));
        assert!(matches!(
            &prod.authorities[2].signer,
            AuthoritySigner::Keyless { subject: Matcher::Regex { .. }, issuer: Matcher::Exact(_) }
        ));
        let slsa = &prod.attestations[0];
        assert_eq!(slsa.predicate_type, crate::predicates::SLSA_PROVENANCE_V1);
        assert_eq!(slsa.signed_by, [2]);
        assert_eq!(slsa.slsa.source_branch.as_deref(), Some("main"));
        assert_eq!(slsa.checks.len(), 1);
        let vuln = &prod.attestations[1];
        assert_eq!(vuln.signed_by, [0, 1, 2], "any authority of the rule by default");
        let v = vuln.vulnerabilities.as_ref().unwrap();
        assert_eq!((v.max_severity, v.fixable), (Some(Severity::High), FixableFindings::Deny));
        assert!(v.ignore.contains("CVE-2024-0001"));
        let staging = &p.rules[1];
        assert_eq!((staging.mode, staging.formats, staging.threshold), (Mode::Warn, Formats::Only(Format::Legacy), 1));
        assert_eq!(p.rule_for("registry.example.com/prod/team/app").map(|r| r.name.as_str()), Some("prod"));
        assert_eq!(p.rule_for("ghcr.io/example/app").map(|r| r.name.as_str()), Some("prod"));
        assert_eq!(p.rule_for("registry.example.com/staging/app").map(|r| r.name.as_str()), Some("staging"));
        assert!(p.rule_for("docker.io/library/nginx").is_none());
        assert_eq!(p.digest, Digest::sha256(&std::fs::read(testdata("full.yaml")).unwrap()));
    }

    #[test]
    fn json_policies_read_the_same() {
        let p = parse_file("full.json").unwrap();
        assert_eq!(p.default, DefaultAction::Allow);
        assert!(p.rules[0].trust.is_none());
        assert!(!p.needs_default_trust());
        assert_eq!(p.rule_for("localhost:5000/a/b").map(|r| r.name.as_str()), Some("internal"));
    }

    #[test]
    fn every_error_names_its_field_and_line() {
        let dir = testdata("bad");
        let (mut seen, mut wrong) = (0, Vec::new());
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            let want = text.lines().next().and_then(|l| l.strip_prefix("# expect: ")).unwrap();
            let err =
                parse(text.as_bytes(), Arc::new(Dir(dir.clone()))).err().unwrap_or_else(|| panic!("{path:?} parsed"));
            if !err.to_string().contains(want) {
                wrong.push(format!("{}: {err}", path.display()));
            }
            seen += 1;
        }
        assert!(wrong.is_empty(), "{wrong:#?}");
        assert!(seen >= 12);
    }

    #[test]
    fn a_policy_without_file_access_refuses_paths() {
        let text = std::fs::read(testdata("full.json")).unwrap();
        let e = parse(&text, Arc::new(NoFiles)).err().unwrap();
        assert!(
            e.to_string().contains(
                "line 9, column 23: rules[0].authorities[0]: ../keys/cosign-p256.pub: this policy may not name files"
            ),
            "{e}"
        );
    }

    #[test]
    fn oversized_and_non_utf8_policies_are_refused() {
        assert!(parse(&vec![b' '; MAX_POLICY_BYTES + 1], Arc::new(NoFiles)).is_err());
        assert!(parse(b"\xff\xfe", Arc::new(NoFiles)).is_err());
        assert!(
            parse(b"apiVersion: sigil/v1\nkind: ImagePolicy\nrules: []\n---\nrules: []\n", Arc::new(NoFiles)).is_err()
        );
    }

    /// A validator for the JSON Schema keywords docs/policy.schema.json uses (no crate for
    /// one test): the schema must accept every example the parser accepts, and refuse the
    /// structural errors.
    fn schema_errors(
        schema: &serde_json::Value,
        root: &serde_json::Value,
        v: &serde_json::Value,
        at: &str,
    ) -> Vec<String> {
        use serde_json::Value;
        let mut errs = Vec::new();
        let Some(obj) = schema.as_object() else { return errs };
        if let Some(r) = obj.get("$ref").and_then(Value::as_str) {
            let target = root.pointer(r.trim_start_matches('#')).unwrap_or_else(|| panic!("bad $ref {r}"));
            return schema_errors(target, root, v, at);
        }
        for (k, rule) in obj {
            let ok = match k.as_str() {
                "type" => match rule.as_str().unwrap() {
                    "object" => v.is_object(),
                    "array" => v.is_array(),
                    "string" => v.is_string(),
                    "integer" => v.is_u64() || v.is_i64(),
                    t => panic!("type {t}"),
                },
                "const" => v == rule,
                "enum" => rule.as_array().unwrap().contains(v),
                "required" => rule.as_array().unwrap().iter().all(|f| v.get(f.as_str().unwrap()).is_some()),
                "minLength" => v.as_str().is_none_or(|s| s.chars().count() as u64 >= rule.as_u64().unwrap()),
                "minItems" => v.as_array().is_none_or(|a| a.len() as u64 >= rule.as_u64().unwrap()),
                "maxItems" => v.as_array().is_none_or(|a| a.len() as u64 <= rule.as_u64().unwrap()),
                "uniqueItems" => v.as_array().is_none_or(|a| a.iter().enumerate().all(|(i, x)| !a[..i].contains(x))),
                "minimum" => v.as_i64().is_none_or(|n| n >= rule.as_i64().unwrap()),
                "pattern" => v.as_str().is_none_or(|s| regex::Regex::new(rule.as_str().unwrap()).unwrap().is_match(s)),
                "additionalProperties" => {
                    let known = obj.get("properties").and_then(Value::as_object);
                    v.as_object().is_none_or(|o| o.keys().all(|key| known.is_some_and(|p| p.contains_key(key))))
                }
                "properties" => {
                    if let Some(o) = v.as_object() {
                        for (key, sub) in rule.as_object().unwrap() {
                            if let Some(x) = o.get(key) {
                                errs.extend(schema_errors(sub, root, x, &format!("{at}.{key}")));
                            }
                        }
                    }
                    true
                }
                "items" => {
                    if let Some(a) = v.as_array() {
                        for (i, x) in a.iter().enumerate() {
                            errs.extend(schema_errors(rule, root, x, &format!("{at}[{i}]")));
                        }
                    }
                    true
                }
                "oneOf" => {
                    rule.as_array().unwrap().iter().filter(|s| schema_errors(s, root, v, at).is_empty()).count() == 1
                }
                "allOf" => rule.as_array().unwrap().iter().all(|s| schema_errors(s, root, v, at).is_empty()),
                "$schema" | "$id" | "title" | "description" | "default" | "$defs" => true,
                other => panic!("keyword {other} not supported by this test"),
            };
            if !ok {
                errs.push(format!("{at}: {k}"));
            }
        }
        errs
    }

    #[test]
    fn the_json_schema_accepts_what_the_parser_accepts() {
        let schema: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/policy.schema.json")).unwrap(),
        )
        .unwrap();
        for f in ["full.yaml", "full.json"] {
            let doc: serde_json::Value =
                serde_yaml_ng::from_str(&std::fs::read_to_string(testdata(f)).unwrap()).unwrap();
            assert_eq!(schema_errors(&schema, &schema, &doc, "$"), Vec::<String>::new(), "{f}");
        }
        // Structural errors the schema refuses too (the others need the parser: regular
        // expressions, files, thresholds, names).
        for f in ["unknown-field", "bad-mode", "bad-severity", "key-and-keyless", "no-authorities", "wrong-version"] {
            let doc: serde_json::Value =
                serde_yaml_ng::from_str(&std::fs::read_to_string(testdata(&format!("bad/{f}.yaml"))).unwrap()).unwrap();
            assert!(!schema_errors(&schema, &schema, &doc, "$").is_empty(), "{f}");
        }
    }
}
