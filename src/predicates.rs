//! The predicate types sigil knows, in one table ([`KNOWN`]): the names `attest --type` takes
//! (cosign's), the URI written into the statement, how the predicate file becomes the
//! predicate, what is checked before anything is signed, and which summary `inspect` shows.
//! Every other module looks types up here instead of spelling out URIs.
//!
//! Also the facts of SLSA provenance that both `inspect` shows and `verify-attestation`
//! checks (builder, source repository, ref, commit), read by one extraction ([`slsa`]) so that
//! what an auditor sees is what the check compares. Pure.

use serde_json::Value;

/// SLSA provenance v1.
pub const SLSA_PROVENANCE_V1: &str = "https://slsa.dev/provenance/v1";
/// SLSA provenance v0.2.
pub const SLSA_PROVENANCE_V02: &str = "https://slsa.dev/provenance/v0.2";
/// SPDX documents (JSON or tag-value).
pub const SPDX: &str = "https://spdx.dev/Document";
/// CycloneDX BOMs.
pub const CYCLONEDX: &str = "https://cyclonedx.org/bom";
/// cosign's vulnerability-scan predicate.
pub const COSIGN_VULN: &str = "https://cosign.sigstore.dev/attestation/vuln/v1";
/// OpenVEX documents (statements carry versioned URIs under it, e.g. `…/ns/v0.2.0`).
pub const OPENVEX: &str = "https://openvex.dev/ns";
/// in-toto links.
pub const IN_TOTO_LINK: &str = "https://in-toto.io/Link/v1";
/// cosign's generic predicate (`--type custom`): `{"Data", "Timestamp"}`.
pub const COSIGN_CUSTOM: &str = "https://cosign.sigstore.dev/attestation/v1";
/// cosign 3's image signature: a statement of this type about the image digest, in a Sigstore
/// bundle. A signature, not an attestation: `attest` refuses to write it.
pub const COSIGN_SIGN_V1: &str = "https://sigstore.dev/cosign/sign/v1";
/// SLSA verification summaries (VSA) v1: what the deploy gate decided about an image
/// ([`crate::gate::summary`] writes them).
pub const SLSA_VERIFICATION_SUMMARY_V1: &str = "https://slsa.dev/verification_summary/v1";

/// How `attest` turns the predicate file into the statement's predicate (as cosign does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PredicateInput {
    /// The file is a JSON object, used as is.
    Json,
    /// SPDX tag-value text (`--type spdx`): the predicate is the text as a JSON string.
    SpdxText,
    /// `--type custom`: cosign's generic predicate `{"Data": <the file as text>, "Timestamp": <RFC 3339>}`.
    CosignCustom,
}

/// SLSA provenance versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlsaVersion {
    /// `https://slsa.dev/provenance/v1`.
    V1,
    /// `https://slsa.dev/provenance/v0.2`.
    V02,
}

impl SlsaVersion {
    /// "v1" or "v0.2".
    pub fn as_str(self) -> &'static str {
        match self {
            SlsaVersion::V1 => "v1",
            SlsaVersion::V02 => "v0.2",
        }
    }
}

/// What is checked of a predicate before it is signed, beyond being a JSON object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Schema {
    /// Any JSON object.
    Object,
    /// The required fields of SLSA provenance of this version.
    Slsa(SlsaVersion),
    /// The required fields of a SLSA verification summary v1.
    VerificationSummary,
}

/// Which summary `inspect` shows for a predicate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SummaryKind {
    /// Builder, build type, source, times, dependencies.
    SlsaProvenance,
    /// An SPDX SBOM (JSON, or tag-value text as a JSON string).
    Spdx,
    /// A CycloneDX SBOM.
    CycloneDx,
    /// Findings by severity.
    Vulnerabilities,
    /// VEX statements by status.
    Vex,
    /// Verifier, time, resource, policy, result and levels of a verification summary.
    VerificationSummary,
    /// No summary.
    None,
}

/// What a predicate type is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// An attestation: `attest` writes it, `verify-attestation` reads it.
    Attestation,
    /// An image signature (cosign 3's bundles): written by `sign`, never by `attest`.
    ImageSignature,
}

/// A name `attest --type` takes, and how it reads the predicate file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Name {
    /// The name (cosign's).
    pub name: &'static str,
    /// How the predicate file is read under this name.
    pub input: PredicateInput,
}

/// One known predicate type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Known {
    /// The URI written into statements.
    pub uri: &'static str,
    /// The names it is chosen by (none: only by URI, or not at all).
    pub names: &'static [Name],
    /// How the predicate file is read when the type is given as its URI (cosign wraps only
    /// its custom type; any other URI takes JSON).
    pub uri_input: PredicateInput,
    /// Whether versioned URIs under it (`<uri>/<version>`) are the same type (OpenVEX).
    pub versioned: bool,
    /// What is checked before signing.
    pub schema: Schema,
    /// What `inspect` shows.
    pub summary: SummaryKind,
    /// What it is for.
    pub role: Role,
}

const fn name(name: &'static str, input: PredicateInput) -> Name {
    Name { name, input }
}

const fn attestation(uri: &'static str, names: &'static [Name], schema: Schema, summary: SummaryKind) -> Known {
    Known { uri, names, uri_input: PredicateInput::Json, versioned: false, schema, summary, role: Role::Attestation }
}

use PredicateInput::{CosignCustom, Json, SpdxText};

/// The predicate types sigil knows, in the order `--help` lists their names.
pub static KNOWN: &[Known] = &[
    attestation(
        SLSA_PROVENANCE_V1,
        &[name("slsaprovenance1", Json)],
        Schema::Slsa(SlsaVersion::V1),
        SummaryKind::SlsaProvenance,
    ),
    attestation(
        SLSA_PROVENANCE_V02,
        // cosign 2 still reads plain `slsaprovenance` as v0.2.
        &[name("slsaprovenance02", Json), name("slsaprovenance", Json)],
        Schema::Slsa(SlsaVersion::V02),
        SummaryKind::SlsaProvenance,
    ),
    attestation(SPDX, &[name("spdx", SpdxText), name("spdxjson", Json)], Schema::Object, SummaryKind::Spdx),
    attestation(CYCLONEDX, &[name("cyclonedx", Json)], Schema::Object, SummaryKind::CycloneDx),
    attestation(COSIGN_VULN, &[name("vuln", Json)], Schema::Object, SummaryKind::Vulnerabilities),
    Known { versioned: true, ..attestation(OPENVEX, &[name("openvex", Json)], Schema::Object, SummaryKind::Vex) },
    attestation(IN_TOTO_LINK, &[name("link", Json)], Schema::Object, SummaryKind::None),
    attestation(
        SLSA_VERIFICATION_SUMMARY_V1,
        &[name("vsa", Json)],
        Schema::VerificationSummary,
        SummaryKind::VerificationSummary,
    ),
    Known {
        uri_input: CosignCustom,
        ..attestation(COSIGN_CUSTOM, &[name("custom", CosignCustom)], Schema::Object, SummaryKind::None)
    },
    Known { role: Role::ImageSignature, ..attestation(COSIGN_SIGN_V1, &[], Schema::Object, SummaryKind::None) },
];

/// The known type of `uri` (exact; for versioned types also `<uri>/<version>`).
pub fn by_uri(uri: &str) -> Option<&'static Known> {
    KNOWN
        .iter()
        .find(|k| uri == k.uri || (k.versioned && uri.strip_prefix(k.uri).is_some_and(|rest| rest.starts_with('/'))))
}

/// Every name `--type` takes, in table order.
pub fn names() -> impl Iterator<Item = &'static str> {
    KNOWN.iter().flat_map(|k| k.names.iter().map(|n| n.name))
}

/// The names for help texts and errors: `slsaprovenance1, …, custom, or a URI`.
pub fn names_help() -> String {
    format!("{}, or a URI", names().collect::<Vec<_>>().join(", "))
}

/// Why a `--type` is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TypeError {
    /// Neither a known name nor a URI.
    #[error("unknown predicate type {0:?}")]
    Unknown(String),
    /// A type that is not an attestation's (cosign 3's image signature).
    #[error("{0} is the image-signature predicate type, not an attestation's")]
    NotAnAttestation(String),
}

/// A predicate type as chosen for `attest`: the URI written and how the file is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PredicateType {
    /// The predicate type URI written into the statement.
    pub uri: String,
    /// How the predicate file is read.
    pub input: PredicateInput,
}

impl PredicateType {
    /// The type named on the command line: a known name, or a URI (anything with a `:`).
    pub fn parse(name: &str) -> Result<Self, TypeError> {
        if let Some((k, n)) = KNOWN.iter().find_map(|k| k.names.iter().find(|n| n.name == name).map(|n| (k, n))) {
            return Ok(PredicateType { uri: k.uri.to_owned(), input: n.input });
        }
        if !name.contains(':') {
            return Err(TypeError::Unknown(name.to_owned()));
        }
        let input = by_uri(name).map_or(PredicateInput::Json, |k| k.uri_input);
        Ok(PredicateType { uri: name.to_owned(), input })
    }

    /// The type to attest with: as [`PredicateType::parse`], and an attestation's.
    pub fn for_attest(name: &str) -> Result<Self, TypeError> {
        let t = Self::parse(name)?;
        check_attestable(&t.uri)?;
        Ok(t)
    }
}

/// Refuses the predicate types that are not attestations' (a statement given whole included).
pub fn check_attestable(uri: &str) -> Result<(), TypeError> {
    match by_uri(uri) {
        Some(k) if k.role != Role::Attestation => Err(TypeError::NotAnAttestation(uri.to_owned())),
        _ => Ok(()),
    }
}

/// The URI of a predicate type name (`slsaprovenance1`, `spdxjson`, …); a URI stays as is.
pub fn uri_of(name: &str) -> Option<String> {
    PredicateType::parse(name).ok().map(|t| t.uri)
}

/// The predicate is not valid for its type; names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("predicate is not valid {kind}: {field}: {reason}")]
pub struct PredicateError {
    /// The predicate type.
    pub kind: String,
    /// The field at fault (JSON path).
    pub field: String,
    /// What is wrong.
    pub reason: String,
}

/// Builds the predicate from the file's bytes, checked before anything is signed.
/// `now` is the RFC 3339 UTC time written into a `custom` predicate.
pub fn build_predicate(t: &PredicateType, bytes: &[u8], now: &str) -> Result<Value, PredicateError> {
    match t.input {
        PredicateInput::Json => check_predicate(&t.uri, bytes),
        PredicateInput::SpdxText => {
            let err = |field: &str, reason: &str| PredicateError {
                kind: "SPDX tag-value".into(),
                field: field.into(),
                reason: reason.into(),
            };
            let text = std::str::from_utf8(bytes).map_err(|_| err("(document)", "not UTF-8 text"))?;
            if !text.lines().any(|l| l.trim_start().starts_with("SPDXVersion:")) {
                return Err(err("SPDXVersion", "missing (an SPDX JSON document needs --type spdxjson)"));
            }
            Ok(Value::String(text.to_owned()))
        }
        // cosign wraps any bytes (Go's string conversion; invalid UTF-8 becomes U+FFFD when
        // marshalled).
        PredicateInput::CosignCustom => Ok(serde_json::json!({
            "Data": String::from_utf8_lossy(bytes),
            "Timestamp": now,
        })),
    }
}

/// Formats seconds since the Unix epoch as RFC 3339 UTC (`2006-01-02T15:04:05Z`).
pub fn rfc3339_utc(unix_seconds: i64) -> String {
    chrono::DateTime::from_timestamp(unix_seconds, 0)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

fn field<'a>(v: &'a Value, path: &[&str]) -> Option<&'a Value> {
    path.iter().try_fold(v, |cur, k| cur.get(k))
}

fn require(v: &Value, kind: &str, path: &[&str], want: fn(&Value) -> bool, what: &str) -> Result<(), PredicateError> {
    match field(v, path) {
        Some(x) if want(x) => Ok(()),
        Some(_) => Err(PredicateError {
            kind: kind.into(),
            field: if path.is_empty() { "(document)".into() } else { path.join(".") },
            reason: format!("must be {what}"),
        }),
        None => Err(PredicateError { kind: kind.into(), field: path.join("."), reason: "missing".into() }),
    }
}

/// Parses and checks a predicate for `predicate_type`: every type must be a JSON object; SLSA
/// provenance must have its schema's required fields.
pub fn check_predicate(predicate_type: &str, bytes: &[u8]) -> Result<Value, PredicateError> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| PredicateError {
        kind: predicate_type.into(),
        field: "(document)".into(),
        reason: format!("not JSON: {e}"),
    })?;
    let object = |x: &Value| x.is_object();
    let string = |x: &Value| x.as_str().is_some_and(|s| !s.is_empty());
    let array = |x: &Value| x.is_array();
    let t = predicate_type;
    require(&v, t, &[], object, "a JSON object")?;
    match by_uri(t).map(|k| k.schema) {
        Some(Schema::Slsa(SlsaVersion::V1)) => {
            require(&v, t, &["buildDefinition"], object, "an object")?;
            require(&v, t, &["buildDefinition", "buildType"], string, "a non-empty string")?;
            require(&v, t, &["buildDefinition", "externalParameters"], object, "an object")?;
            require(&v, t, &["runDetails"], object, "an object")?;
            require(&v, t, &["runDetails", "builder", "id"], string, "a non-empty string")?;
        }
        Some(Schema::Slsa(SlsaVersion::V02)) => {
            require(&v, t, &["builder", "id"], string, "a non-empty string")?;
            require(&v, t, &["buildType"], string, "a non-empty string")?;
            if field(&v, &["invocation"]).is_some() {
                require(&v, t, &["invocation"], object, "an object")?;
            }
            if field(&v, &["materials"]).is_some() {
                require(&v, t, &["materials"], array, "an array")?;
            }
        }
        Some(Schema::VerificationSummary) => {
            // SLSA VSA v1's required fields (`timeVerified` became optional in 1.1).
            require(&v, t, &["verifier", "id"], string, "a non-empty string")?;
            if field(&v, &["timeVerified"]).is_some() {
                require(&v, t, &["timeVerified"], string, "a non-empty string")?;
            }
            require(&v, t, &["resourceUri"], string, "a non-empty string")?;
            require(&v, t, &["policy", "uri"], string, "a non-empty string")?;
            let result = |x: &Value| matches!(x.as_str(), Some("PASSED" | "FAILED"));
            require(&v, t, &["verificationResult"], result, "\"PASSED\" or \"FAILED\"")?;
            let levels = |x: &Value| x.as_array().is_some_and(|a| a.iter().all(Value::is_string));
            require(&v, t, &["verifiedLevels"], levels, "an array of strings")?;
        }
        Some(Schema::Object) | None => {}
    }
    Ok(v)
}

// ---------------------------------------------------------------------------------------
// SLSA provenance facts.

/// The facts of SLSA provenance `inspect` shows and `verify-attestation` checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Provenance<'a> {
    /// v1 or v0.2.
    pub version: SlsaVersion,
    /// `runDetails.builder.id` (v1), `builder.id` (v0.2).
    pub builder: Option<String>,
    /// `buildDefinition.buildType` (v1), `buildType` (v0.2).
    pub build_type: Option<String>,
    /// Where the source came from (see [`SlsaSource`]).
    pub source: Option<SlsaSource>,
    /// Build start.
    pub started_on: Option<String>,
    /// Build end.
    pub finished_on: Option<String>,
    /// `buildDefinition.resolvedDependencies` (v1), `materials` (v0.2).
    pub dependencies: &'a [Value],
}

/// The source repository of a build, read from one place in the provenance:
///
/// - v1: `buildDefinition.resolvedDependencies[0]` (the GitHub builders' contract, as
///   slsa-verifier reads it), else `buildDefinition.externalParameters.source` (BYOB), else
///   `buildDefinition.externalParameters.workflow` (`repository` and `ref`, no commit);
/// - v0.2: `invocation.configSource` (what the build was started from), else `materials[0]`.
///
/// The first of these with a string `uri` is the source; its `digest` (`gitCommit`, `sha1`,
/// `sha256`, in that order) is the commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlsaSource {
    /// The repository in the form of [`repository_of`] (`https://github.com/org/repo`).
    pub repository: String,
    /// The git ref after `@` in the URI (`refs/heads/main`), or the workflow's `ref`.
    pub git_ref: Option<String>,
    /// The commit.
    pub commit: Option<String>,
    /// Where in the predicate it was read (e.g. `invocation.configSource`).
    pub field: &'static str,
}

/// The repository a git URI or a `--source-uri` names, in one form both sides are compared
/// in: `git+` dropped, `https://` added when there is no scheme (as slsa-verifier does:
/// `github.com/org/repo` means `https://github.com/org/repo`), the `@ref` after the path
/// dropped, and one trailing `.git` dropped. Any other scheme is kept, so `http://` or
/// `ssh://` sources never equal an `https://` one.
pub fn repository_of(uri: &str) -> String {
    split_git_uri(uri).0
}

/// (repository as [`repository_of`], ref after the last `@` in the path).
fn split_git_uri(uri: &str) -> (String, Option<String>) {
    let u = uri.strip_prefix("git+").unwrap_or(uri);
    let u = if u.contains("://") { u.to_owned() } else { format!("https://{u}") };
    // The ref follows the path; an `@` in the authority (`ssh://git@host/…`) is not one.
    let path_start = u.find("://").map(|i| i + 3).and_then(|a| u[a..].find('/').map(|p| a + p)).unwrap_or(u.len());
    let (repo, git_ref) = match u[path_start..].rfind('@') {
        Some(at) => (&u[..path_start + at], Some(u[path_start + at + 1..].to_owned())),
        None => (u.as_str(), None),
    };
    (repo.strip_suffix(".git").unwrap_or(repo).to_owned(), git_ref.filter(|r| !r.is_empty()))
}

fn text(v: &Value, path: &[&str]) -> Option<String> {
    field(v, path).and_then(Value::as_str).map(str::to_owned)
}

fn commit(v: &Value) -> Option<String> {
    ["gitCommit", "sha1", "sha256"].iter().find_map(|k| text(v, &["digest", k]))
}

/// A resource descriptor (v1) or material / config source (v0.2) with a string `uri`.
fn from_resource(v: Option<&Value>, field: &'static str) -> Option<SlsaSource> {
    let v = v?;
    let (repository, git_ref) = split_git_uri(&text(v, &["uri"])?);
    Some(SlsaSource { repository, git_ref, commit: commit(v), field })
}

fn arr<'a>(v: &'a Value, path: &[&str]) -> &'a [Value] {
    field(v, path).and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[])
}

/// The SLSA facts of `predicate` when `predicate_type` is SLSA provenance.
pub fn slsa<'a>(predicate_type: &str, predicate: &'a Value) -> Option<Provenance<'a>> {
    let Schema::Slsa(version) = by_uri(predicate_type)?.schema else { return None };
    let p = predicate;
    Some(match version {
        SlsaVersion::V1 => {
            let deps = arr(p, &["buildDefinition", "resolvedDependencies"]);
            let workflow = || {
                let w = field(p, &["buildDefinition", "externalParameters", "workflow"])?;
                Some(SlsaSource {
                    repository: repository_of(&text(w, &["repository"])?),
                    git_ref: text(w, &["ref"]),
                    commit: None,
                    field: "buildDefinition.externalParameters.workflow",
                })
            };
            let source = from_resource(deps.first(), "buildDefinition.resolvedDependencies[0]")
                .or_else(|| {
                    from_resource(
                        field(p, &["buildDefinition", "externalParameters", "source"]),
                        "buildDefinition.externalParameters.source",
                    )
                })
                .or_else(workflow);
            Provenance {
                version,
                builder: text(p, &["runDetails", "builder", "id"]),
                build_type: text(p, &["buildDefinition", "buildType"]),
                source,
                started_on: text(p, &["runDetails", "metadata", "startedOn"]),
                finished_on: text(p, &["runDetails", "metadata", "finishedOn"]),
                dependencies: deps,
            }
        }
        SlsaVersion::V02 => {
            let materials = arr(p, &["materials"]);
            let source = from_resource(field(p, &["invocation", "configSource"]), "invocation.configSource")
                .or_else(|| from_resource(materials.first(), "materials[0]"));
            Provenance {
                version,
                builder: text(p, &["builder", "id"]),
                build_type: text(p, &["buildType"]),
                source,
                started_on: text(p, &["metadata", "buildStartedOn"]),
                finished_on: text(p, &["metadata", "buildFinishedOn"]),
                dependencies: materials,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_uris_come_from_the_table() {
        assert_eq!(uri_of("slsaprovenance1").as_deref(), Some(SLSA_PROVENANCE_V1));
        assert_eq!(uri_of("slsaprovenance").as_deref(), Some(SLSA_PROVENANCE_V02));
        assert_eq!(uri_of("https://example.com/p").as_deref(), Some("https://example.com/p"));
        assert_eq!(uri_of("nonsense"), None);
        assert_eq!(
            names_help(),
            "slsaprovenance1, slsaprovenance02, slsaprovenance, spdx, spdxjson, cyclonedx, vuln, openvex, link, vsa, custom, or a URI"
        );
        // Every name appears once, and every URI once.
        let names: Vec<_> = names().collect();
        let mut unique = names.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), names.len());
        assert!(KNOWN.iter().all(|k| KNOWN.iter().filter(|o| o.uri == k.uri).count() == 1));
        assert_eq!(by_uri("https://openvex.dev/ns/v0.2.0").map(|k| k.uri), Some(OPENVEX));
        assert_eq!(by_uri("https://openvex.dev/nsx"), None);
        assert_eq!(by_uri("https://cyclonedx.org/bom/v1.5"), None, "only versioned types match below their URI");
    }

    #[test]
    fn the_custom_uri_wraps_as_the_custom_name_does() {
        let by_name = PredicateType::parse("custom").unwrap();
        assert_eq!(by_name, PredicateType { uri: COSIGN_CUSTOM.into(), input: PredicateInput::CosignCustom });
        assert_eq!(PredicateType::parse(COSIGN_CUSTOM).unwrap(), by_name);
        assert_eq!(PredicateType::parse(SPDX).unwrap().input, PredicateInput::Json);
        assert_eq!(PredicateType::parse("spdx").unwrap().input, PredicateInput::SpdxText);
    }

    // see: issue 9
    #[test]
    fn attest_refuses_the_image_signature_predicate_type() {
        let e = PredicateType::for_attest(COSIGN_SIGN_V1).unwrap_err();
        assert_eq!(e, TypeError::NotAnAttestation(COSIGN_SIGN_V1.into()));
        assert!(PredicateType::parse(COSIGN_SIGN_V1).is_ok(), "still a type one may look for");
        assert!(PredicateType::for_attest("slsaprovenance1").is_ok());
    }

    #[test]
    fn slsa_v1_fields_are_named() {
        let ok =
            br#"{"buildDefinition":{"buildType":"t","externalParameters":{}},"runDetails":{"builder":{"id":"b"}}}"#;
        assert!(check_predicate(SLSA_PROVENANCE_V1, ok).is_ok());
        let bad = br#"{"buildDefinition":{"buildType":"t","externalParameters":{}},"runDetails":{"builder":{}}}"#;
        let e = check_predicate(SLSA_PROVENANCE_V1, bad).unwrap_err();
        assert!(e.to_string().contains("runDetails.builder.id: missing"), "{e}");
        let e = check_predicate(SLSA_PROVENANCE_V02, br#"{"builder":{"id":"x"}}"#).unwrap_err();
        assert!(e.to_string().contains("buildType"), "{e}");
        assert!(check_predicate(CYCLONEDX, b"not json").is_err());
        assert!(check_predicate(CYCLONEDX, b"[1]").is_err());
    }

    #[test]
    fn verification_summary_fields_are_named() {
        assert_eq!(uri_of("vsa").as_deref(), Some(SLSA_VERIFICATION_SUMMARY_V1));
        let ok = serde_json::json!({"verifier": {"id": "https://gate.example"}, "timeVerified": "2026-01-01T00:00:00Z",
            "resourceUri": "r.example/app@sha256:aa", "policy": {"uri": "file:///p.yaml"},
            "verificationResult": "PASSED", "verifiedLevels": ["SLSA_BUILD_LEVEL_3"]});
        let check = |v: &Value| check_predicate(SLSA_VERIFICATION_SUMMARY_V1, v.to_string().as_bytes());
        assert!(check(&ok).is_ok());
        let mut no_time = ok.clone();
        no_time.as_object_mut().unwrap().remove("timeVerified");
        assert!(check(&no_time).is_ok(), "optional since 1.1");
        for (field, bad, why) in [
            ("verificationResult", serde_json::json!("passed"), "verificationResult: must be \"PASSED\" or \"FAILED\""),
            ("verifiedLevels", serde_json::json!("SLSA_BUILD_LEVEL_3"), "verifiedLevels: must be an array of strings"),
            ("policy", serde_json::json!({"digest": {}}), "policy.uri: missing"),
            ("verifier", serde_json::json!({}), "verifier.id: missing"),
        ] {
            let mut v = ok.clone();
            v[field] = bad;
            let e = check(&v).unwrap_err();
            assert!(e.to_string().contains(why), "{e}");
        }
    }

    #[test]
    fn spdx_text_and_custom_predicates_are_wrapped_as_cosign_does() {
        let spdx = PredicateType::parse("spdx").unwrap();
        let v = build_predicate(&spdx, b"SPDXVersion: SPDX-2.3\nDataLicense: CC0-1.0\n", "x").unwrap();
        assert_eq!(v, serde_json::json!("SPDXVersion: SPDX-2.3\nDataLicense: CC0-1.0\n"));
        let e = build_predicate(&spdx, br#"{"spdxVersion":"SPDX-2.3"}"#, "x").unwrap_err();
        assert!(e.to_string().contains("spdxjson"), "{e}");
        let custom = PredicateType::parse("custom").unwrap();
        let v = build_predicate(&custom, b"foo", &rfc3339_utc(1_700_000_000)).unwrap();
        assert_eq!(v, serde_json::json!({"Data": "foo", "Timestamp": "2023-11-14T22:13:20Z"}));
    }

    #[test]
    fn git_uris_split_into_repository_and_ref() {
        let cases = [
            ("git+https://github.com/org/repo@refs/heads/main", "https://github.com/org/repo", Some("refs/heads/main")),
            ("git+https://github.com/org/repo.git@refs/tags/v1", "https://github.com/org/repo", Some("refs/tags/v1")),
            ("https://github.com/org/repo", "https://github.com/org/repo", None),
            ("github.com/org/repo", "https://github.com/org/repo", None),
            ("git+ssh://git@example.com/org/repo.git@main", "ssh://git@example.com/org/repo", Some("main")),
            ("http://github.com/org/repo", "http://github.com/org/repo", None),
        ];
        for (uri, repo, r) in cases {
            assert_eq!(split_git_uri(uri), (repo.to_owned(), r.map(str::to_owned)), "{uri}");
        }
    }

    #[test]
    fn slsa_source_is_read_from_one_place_per_version() {
        let v1 = serde_json::json!({"buildDefinition": {"externalParameters": {
            "workflow": {"repository": "https://github.com/org/wf", "ref": "refs/heads/main"}}}});
        let s = slsa(SLSA_PROVENANCE_V1, &v1).unwrap().source.unwrap();
        assert_eq!(
            (s.repository.as_str(), s.git_ref.as_deref(), s.field),
            ("https://github.com/org/wf", Some("refs/heads/main"), "buildDefinition.externalParameters.workflow")
        );
        let v02 = serde_json::json!({
            "invocation": {"configSource": {"uri": "git+https://github.com/org/a@refs/heads/main", "digest": {"sha1": "aa"}}},
            "materials": [{"uri": "git+https://github.com/org/b@refs/heads/main", "digest": {"sha1": "bb"}}]});
        let s = slsa(SLSA_PROVENANCE_V02, &v02).unwrap().source.unwrap();
        assert_eq!((s.repository.as_str(), s.commit.as_deref()), ("https://github.com/org/a", Some("aa")));
        assert!(slsa(CYCLONEDX, &v02).is_none());
    }
}
