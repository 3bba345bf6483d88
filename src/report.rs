//! What an auditor reads about an attestation: a summary of its predicate by type (SLSA
//! provenance, SBOM, vulnerability report, VEX, SLSA verification summary). Which summary a type gets is the
//! [`crate::predicates`] table's; the SLSA facts are its extraction, the one
//! `verify-attestation` checks. Pure: JSON in, summary out.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use crate::predicates::{self, SummaryKind};

/// Most names listed (top-level components, dependencies).
pub const MAX_LISTED: usize = 20;

/// A predicate, summarised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Summary {
    /// SLSA provenance (v1 or v0.2).
    SlsaProvenance {
        /// SLSA version ("v1", "v0.2").
        version: &'static str,
        /// Builder id.
        builder: Option<String>,
        /// Build type.
        #[serde(rename = "buildType")]
        build_type: Option<String>,
        /// Source repository.
        #[serde(rename = "sourceRepository")]
        source_repository: Option<String>,
        /// Source commit.
        #[serde(rename = "sourceCommit")]
        source_commit: Option<String>,
        /// Build start time.
        #[serde(rename = "startedOn")]
        started_on: Option<String>,
        /// Build finish time.
        #[serde(rename = "finishedOn")]
        finished_on: Option<String>,
        /// Resolved dependencies / materials, `uri@alg:digest` (at most [`MAX_LISTED`]).
        #[serde(rename = "resolvedDependencies")]
        resolved_dependencies: Vec<String>,
        /// How many there are in all.
        #[serde(rename = "resolvedDependencyCount")]
        resolved_dependency_count: usize,
    },
    /// A software bill of materials.
    Sbom {
        /// Format and version, e.g. "SPDX-2.3", "CycloneDX 1.5".
        format: String,
        /// Number of packages or components.
        packages: usize,
        /// Top-level components (at most [`MAX_LISTED`]).
        #[serde(rename = "topLevel")]
        top_level: Vec<String>,
    },
    /// A vulnerability scan.
    Vulnerabilities {
        /// Scanner URI.
        scanner: Option<String>,
        /// Scanner version.
        #[serde(rename = "scannerVersion")]
        scanner_version: Option<String>,
        /// Findings by severity (lower-cased).
        #[serde(rename = "bySeverity")]
        by_severity: BTreeMap<String, u64>,
        /// All findings.
        total: u64,
    },
    /// An OpenVEX document.
    Vex {
        /// Statements by status.
        #[serde(rename = "byStatus")]
        by_status: BTreeMap<String, u64>,
    },
    /// A SLSA verification summary: what a verifier (a deploy gate) decided about the image.
    VerificationSummary {
        /// `verifier.id`.
        verifier: Option<String>,
        /// `verifier.version`: component → version (at most [`MAX_LISTED`]).
        #[serde(rename = "verifierVersion")]
        verifier_version: BTreeMap<String, String>,
        /// `timeVerified`.
        #[serde(rename = "timeVerified")]
        time_verified: Option<String>,
        /// `resourceUri`: the image as it was checked.
        #[serde(rename = "resourceUri")]
        resource_uri: Option<String>,
        /// `verificationResult`: "PASSED" or "FAILED".
        result: Option<String>,
        /// `verifiedLevels` (at most [`MAX_LISTED`]).
        #[serde(rename = "verifiedLevels")]
        verified_levels: Vec<String>,
        /// `policy.uri`.
        policy: Option<String>,
        /// `policy.digest`, as `alg:hex` (SHA-256 when there is one).
        #[serde(rename = "policyDigest")]
        policy_digest: Option<String>,
        /// How many input attestations it lists.
        #[serde(rename = "inputAttestations")]
        input_attestations: usize,
    },
    /// A predicate type without a summary.
    Other,
}

fn s(v: &Value, path: &[&str]) -> Option<String> {
    path.iter().try_fold(v, |cur, k| cur.get(k)).and_then(Value::as_str).map(str::to_owned)
}

fn arr<'a>(v: &'a Value, path: &[&str]) -> &'a [Value] {
    path.iter().try_fold(v, |cur, k| cur.get(k)).and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[])
}

/// `uri@alg:hex` for a resource descriptor or material.
fn resource(v: &Value) -> Option<String> {
    let uri = s(v, &["uri"]).or_else(|| s(v, &["name"]))?;
    let digest = v.get("digest").and_then(Value::as_object).and_then(|d| d.iter().next());
    Some(match digest {
        Some((alg, Value::String(h))) => format!("{uri}@{alg}:{h}"),
        _ => uri,
    })
}

fn listed(items: &[Value], f: impl Fn(&Value) -> Option<String>) -> Vec<String> {
    items.iter().filter_map(f).take(MAX_LISTED).collect()
}

/// Summarises `predicate` of type `predicate_type`.
pub fn summarize(predicate_type: &str, predicate: &Value) -> Summary {
    let Some(known) = predicates::by_uri(predicate_type) else { return Summary::Other };
    match known.summary {
        SummaryKind::SlsaProvenance => match predicates::slsa(predicate_type, predicate) {
            Some(p) => {
                let (source_repository, source_commit) =
                    p.source.map(|s| (Some(s.repository), s.commit)).unwrap_or_default();
                Summary::SlsaProvenance {
                    version: p.version.as_str(),
                    builder: p.builder,
                    build_type: p.build_type,
                    source_repository,
                    source_commit,
                    started_on: p.started_on,
                    finished_on: p.finished_on,
                    resolved_dependencies: listed(p.dependencies, resource),
                    resolved_dependency_count: p.dependencies.len(),
                }
            }
            None => Summary::Other,
        },
        SummaryKind::Spdx => match predicate {
            Value::String(text) => spdx_tag_value(text),
            v => spdx_json(v),
        },
        SummaryKind::CycloneDx => cyclonedx(predicate),
        SummaryKind::Vulnerabilities => {
            let (by_severity, total) = severities(crate::vulns::report_of(predicate));
            Summary::Vulnerabilities {
                scanner: s(predicate, &["scanner", "uri"]),
                scanner_version: s(predicate, &["scanner", "version"]),
                by_severity,
                total,
            }
        }
        SummaryKind::Vex => {
            let mut by_status = BTreeMap::new();
            for st in arr(predicate, &["statements"]) {
                *by_status.entry(s(st, &["status"]).unwrap_or_else(|| "(none)".into())).or_default() += 1;
            }
            Summary::Vex { by_status }
        }
        SummaryKind::VerificationSummary => verification_summary(predicate),
        SummaryKind::None => Summary::Other,
    }
}

/// The fields of a verification summary, each as the predicate has it (absent or mistyped:
/// none).
fn verification_summary(p: &Value) -> Summary {
    let strings = |path: &[&str]| -> Vec<String> {
        arr(p, path).iter().filter_map(Value::as_str).map(str::to_owned).take(MAX_LISTED).collect()
    };
    let map = |path: &[&str]| -> BTreeMap<String, String> {
        path.iter()
            .try_fold(p, |cur, k| cur.get(k))
            .and_then(Value::as_object)
            .map(|m| {
                m.iter().filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned()))).take(MAX_LISTED).collect()
            })
            .unwrap_or_default()
    };
    let policy_digest = map(&["policy", "digest"]);
    let policy_digest = policy_digest
        .get_key_value("sha256")
        .or_else(|| policy_digest.iter().next())
        .map(|(alg, hex)| format!("{alg}:{hex}"));
    Summary::VerificationSummary {
        verifier: s(p, &["verifier", "id"]),
        verifier_version: map(&["verifier", "version"]),
        time_verified: s(p, &["timeVerified"]),
        resource_uri: s(p, &["resourceUri"]),
        result: s(p, &["verificationResult"]),
        verified_levels: strings(&["verifiedLevels"]),
        policy: s(p, &["policy", "uri"]),
        policy_digest,
        input_attestations: arr(p, &["inputAttestations"]).len(),
    }
}

/// An SBOM document as attached (not attested): summarised by its media type.
pub fn summarize_sbom(media_type: &str, document: &[u8]) -> Option<Summary> {
    if media_type == "text/spdx" {
        return std::str::from_utf8(document).ok().map(spdx_tag_value);
    }
    let v: Value = serde_json::from_slice(document).ok()?;
    Some(match media_type {
        "application/vnd.cyclonedx+json" => cyclonedx(&v),
        _ => spdx_json(&v),
    })
}

fn spdx_json(v: &Value) -> Summary {
    let packages = arr(v, &["packages"]);
    let mut top: Vec<String> =
        arr(v, &["documentDescribes"]).iter().filter_map(|x| x.as_str()).map(str::to_owned).collect();
    for r in arr(v, &["relationships"]) {
        if s(r, &["spdxElementId"]).as_deref() == Some("SPDXRef-DOCUMENT")
            && s(r, &["relationshipType"]).as_deref() == Some("DESCRIBES")
        {
            top.extend(s(r, &["relatedSpdxElement"]));
        }
    }
    // SPDX ids to package names, where known.
    let names: Vec<String> = top
        .iter()
        .map(|id| {
            packages
                .iter()
                .find(|p| s(p, &["SPDXID"]).as_deref() == Some(id.as_str()))
                .and_then(|p| s(p, &["name"]))
                .unwrap_or_else(|| id.clone())
        })
        .take(MAX_LISTED)
        .collect();
    Summary::Sbom {
        format: s(v, &["spdxVersion"]).unwrap_or_else(|| "SPDX".into()),
        packages: packages.len(),
        top_level: if names.is_empty() { listed(packages, |p| s(p, &["name"])) } else { names },
    }
}

fn spdx_tag_value(text: &str) -> Summary {
    let value = |l: &str, k: &str| l.trim_start().strip_prefix(k).map(|r| r.trim().to_owned());
    let format = text.lines().find_map(|l| value(l, "SPDXVersion:")).unwrap_or_else(|| "SPDX".into());
    let names: Vec<String> = text.lines().filter_map(|l| value(l, "PackageName:")).collect();
    Summary::Sbom { format, packages: names.len(), top_level: names.into_iter().take(MAX_LISTED).collect() }
}

fn cyclonedx(v: &Value) -> Summary {
    let top = arr(v, &["components"]);
    // Nested components count too (iteratively: depth is the document's, not the stack's).
    let mut count = 0;
    let mut stack: Vec<&Value> = top.iter().collect();
    while let Some(c) = stack.pop() {
        count += 1;
        stack.extend(arr(c, &["components"]));
    }
    let mut top_level: Vec<String> = s(v, &["metadata", "component", "name"]).into_iter().collect();
    top_level.extend(listed(top, |c| {
        let name = s(c, &["name"])?;
        Some(match s(c, &["version"]) {
            Some(ver) => format!("{name}@{ver}"),
            None => name,
        })
    }));
    top_level.truncate(MAX_LISTED);
    Summary::Sbom {
        format: format!("CycloneDX {}", s(v, &["specVersion"]).unwrap_or_default()).trim().to_owned(),
        packages: count,
        top_level,
    }
}

/// Counts findings by severity: a Trivy or Grype report as [`crate::vulns`] reads it;
/// otherwise any object with a string `Severity` or `severity`, not counting
/// `relatedVulnerabilities` (restatements of a finding).
fn severities(result: &Value) -> (BTreeMap<String, u64>, u64) {
    match crate::vulns::findings(result) {
        Ok((_, findings)) => {
            let mut by: BTreeMap<String, u64> = BTreeMap::new();
            for f in &findings {
                *by.entry(f.severity.as_str().to_owned()).or_default() += 1;
            }
            (by, findings.len() as u64)
        }
        Err(_) => severities_anywhere(result),
    }
}

fn severities_anywhere(result: &Value) -> (BTreeMap<String, u64>, u64) {
    let mut by = BTreeMap::new();
    let mut total = 0;
    let mut stack = vec![result];
    while let Some(v) = stack.pop() {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(sev)) = m.get("Severity").or_else(|| m.get("severity")) {
                    *by.entry(sev.to_lowercase()).or_default() += 1;
                    total += 1;
                }
                stack.extend(m.iter().filter(|(k, _)| k.as_str() != "relatedVulnerabilities").map(|(_, v)| v));
            }
            Value::Array(a) => stack.extend(a.iter()),
            _ => {}
        }
    }
    (by, total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn slsa_v1_summary() {
        let p = json!({
            "buildDefinition": {"buildType": "https://example.com/t", "externalParameters": {},
                "resolvedDependencies": [{"uri": "git+https://github.com/org/repo@refs/heads/main", "digest": {"gitCommit": "abc123"}},
                                         {"uri": "pkg:golang/x@1", "digest": {"sha256": "ff"}}]},
            "runDetails": {"builder": {"id": "https://builder"}, "metadata": {"startedOn": "2026-01-01T00:00:00Z", "finishedOn": "2026-01-01T00:05:00Z"}}
        });
        let Summary::SlsaProvenance {
            builder,
            source_repository,
            source_commit,
            started_on,
            resolved_dependencies,
            ..
        } = summarize(predicates::SLSA_PROVENANCE_V1, &p)
        else {
            panic!("not SLSA")
        };
        assert_eq!(builder.as_deref(), Some("https://builder"));
        assert_eq!(source_repository.as_deref(), Some("https://github.com/org/repo"));
        assert_eq!(source_commit.as_deref(), Some("abc123"));
        assert_eq!(started_on.as_deref(), Some("2026-01-01T00:00:00Z"));
        assert_eq!(resolved_dependencies[1], "pkg:golang/x@1@sha256:ff");
    }

    #[test]
    fn sbom_and_vuln_summaries() {
        let spdx = json!({"spdxVersion": "SPDX-2.3", "documentDescribes": ["SPDXRef-app"],
            "packages": [{"SPDXID": "SPDXRef-app", "name": "app"}, {"SPDXID": "SPDXRef-z", "name": "zlib"}]});
        assert_eq!(
            summarize(predicates::SPDX, &spdx),
            Summary::Sbom { format: "SPDX-2.3".into(), packages: 2, top_level: vec!["app".into()] }
        );
        let cdx =
            json!({"specVersion": "1.5", "components": [{"name": "a", "version": "1", "components": [{"name": "b"}]}]});
        assert_eq!(
            summarize(predicates::CYCLONEDX, &cdx),
            Summary::Sbom { format: "CycloneDX 1.5".into(), packages: 2, top_level: vec!["a@1".into()] }
        );
        let tv = Value::String("SPDXVersion: SPDX-2.2\nPackageName: busybox\nPackageName: musl\n".into());
        assert_eq!(
            summarize(predicates::SPDX, &tv),
            Summary::Sbom { format: "SPDX-2.2".into(), packages: 2, top_level: vec!["busybox".into(), "musl".into()] }
        );
        let vuln = json!({"scanner": {"uri": "pkg:github/aquasecurity/trivy", "version": "0.50.0",
            "result": {"Results": [{"Vulnerabilities": [{"Severity": "CRITICAL"}, {"Severity": "LOW"}, {"Severity": "LOW"}]}]}}});
        let Summary::Vulnerabilities { by_severity, total, .. } = summarize(predicates::COSIGN_VULN, &vuln) else {
            panic!("not vuln")
        };
        assert_eq!(total, 3);
        assert_eq!(by_severity.get("low"), Some(&2));
        let grype = json!({"scanner": {"result": {"matches": [
            {"vulnerability": {"severity": "High"}, "relatedVulnerabilities": [{"severity": "High"}]},
            {"vulnerability": {"severity": "Medium"}}]}}});
        let Summary::Vulnerabilities { by_severity, total, .. } = summarize(predicates::COSIGN_VULN, &grype) else {
            panic!("not vuln")
        };
        assert_eq!((total, by_severity.get("high")), (2, Some(&1)), "related vulnerabilities are not findings");
        assert_eq!(summarize("https://example.com/x", &json!({})), Summary::Other);
    }

    #[test]
    fn verification_summary_summary() {
        let vsa = json!({"verifier": {"id": "https://gate.example", "version": {"sigil": "1.2.3", "n": 7}},
            "timeVerified": "2026-01-01T00:00:00Z", "resourceUri": "r.example/app@sha256:aa",
            "policy": {"uri": "file:///p.yaml", "digest": {"sha512": "ee", "sha256": "ff"}},
            "inputAttestations": [{"uri": "x", "digest": {"sha256": "11"}}],
            "verificationResult": "PASSED", "verifiedLevels": ["SLSA_BUILD_LEVEL_3", 3]});
        let summary = summarize(predicates::SLSA_VERIFICATION_SUMMARY_V1, &vsa);
        assert_eq!(
            serde_json::to_value(&summary).unwrap(),
            json!({"kind": "verification-summary", "verifier": "https://gate.example",
                "verifierVersion": {"sigil": "1.2.3"}, "timeVerified": "2026-01-01T00:00:00Z",
                "resourceUri": "r.example/app@sha256:aa", "result": "PASSED", "verifiedLevels": ["SLSA_BUILD_LEVEL_3"],
                "policy": "file:///p.yaml", "policyDigest": "sha256:ff", "inputAttestations": 1}),
            "the JSON schema of the summary"
        );
        // A summary missing its fields says so field by field.
        let Summary::VerificationSummary { verifier, result, verified_levels, policy_digest, .. } =
            summarize(predicates::SLSA_VERIFICATION_SUMMARY_V1, &json!({}))
        else {
            panic!("not a verification summary")
        };
        assert_eq!((verifier, result, verified_levels, policy_digest), (None, None, vec![], None));
    }
}
