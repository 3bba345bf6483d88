//! Vulnerability findings read from a scanner's report: Trivy's JSON report
//! (`Results[].Vulnerabilities[]`) and Grype's (`matches[].vulnerability`), whether the report
//! is the predicate itself or wrapped in cosign's vuln predicate (`scanner.result`). The one
//! reader of findings: `inspect` counts them ([`crate::report`]) and the gate's policy judges
//! them ([`crate::policy::VulnerabilityCondition`]). Pure: JSON in, findings out.

use std::fmt;

use serde_json::Value;

/// Most findings read from one report; a longer one is refused rather than half read.
pub const MAX_FINDINGS: usize = 100_000;

/// A finding's severity, in the scanners' order (Trivy's `UNKNOWN` is its lowest; Grype's
/// `Negligible` sits below `Low`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Not rated (yet).
    Unknown,
    /// Grype's lowest rating.
    Negligible,
    /// Low.
    Low,
    /// Medium.
    Medium,
    /// High.
    High,
    /// Critical.
    Critical,
}

impl Severity {
    /// Reads a scanner's spelling (any case); another word is not a severity (a report that
    /// names one is not read: it must not pass as the lowest level).
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s.to_ascii_lowercase().as_str() {
            "critical" => Severity::Critical,
            "high" => Severity::High,
            "medium" | "moderate" => Severity::Medium,
            "low" => Severity::Low,
            "negligible" => Severity::Negligible,
            "unknown" => Severity::Unknown,
            _ => return None,
        })
    }

    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Unknown => "unknown",
            Severity::Negligible => "negligible",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a fixed version exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fix {
    /// The scanner names a fixed version.
    Available,
    /// No fix (not fixed, won't fix, or not stated).
    None,
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// CVE or advisory id.
    pub id: String,
    /// Its severity.
    pub severity: Severity,
    /// Whether a fix exists.
    pub fix: Fix,
    /// The affected package, where named.
    pub package: Option<String>,
}

/// Which scanner wrote the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scanner {
    /// Trivy JSON.
    Trivy,
    /// Grype JSON.
    Grype,
}

/// Why no findings could be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    /// Neither a Trivy nor a Grype JSON report.
    #[error("the report is neither Trivy's JSON (Results) nor Grype's (matches)")]
    UnknownFormat,
    /// A finding without the fields every report of that scanner has.
    #[error("{scanner:?} finding {index} has no {field}")]
    Malformed {
        /// The scanner.
        scanner: Scanner,
        /// Position in the report.
        index: usize,
        /// What is missing.
        field: &'static str,
    },
    /// More than [`MAX_FINDINGS`].
    #[error("the report lists more than {MAX_FINDINGS} findings")]
    TooMany,
}

/// The report inside a predicate: cosign's vuln predicate wraps it in `scanner.result`;
/// otherwise the predicate is the report.
pub fn report_of(predicate: &Value) -> &Value {
    predicate.pointer("/scanner/result").filter(|r| r.is_object()).unwrap_or(predicate)
}

/// The findings of a Trivy or Grype JSON report.
pub fn findings(report: &Value) -> Result<(Scanner, Vec<Finding>), ReportError> {
    let str_at = |v: &Value, p: &str| v.pointer(p).and_then(Value::as_str).map(str::to_owned);
    if let Some(results) = report.get("Results").and_then(Value::as_array) {
        let mut out = Vec::new();
        for r in results {
            let vulns = match r.get("Vulnerabilities") {
                None | Some(Value::Null) => continue,
                Some(Value::Array(a)) => a,
                Some(_) => {
                    return Err(ReportError::Malformed {
                        scanner: Scanner::Trivy,
                        index: out.len(),
                        field: "Vulnerabilities list",
                    })
                }
            };
            for v in vulns {
                if out.len() >= MAX_FINDINGS {
                    return Err(ReportError::TooMany);
                }
                let index = out.len();
                let id = str_at(v, "/VulnerabilityID").ok_or(ReportError::Malformed {
                    scanner: Scanner::Trivy,
                    index,
                    field: "VulnerabilityID",
                })?;
                let fixed = str_at(v, "/FixedVersion").is_some_and(|f| !f.is_empty())
                    || str_at(v, "/Status").as_deref() == Some("fixed");
                let severity = str_at(v, "/Severity")
                    .and_then(|s| Severity::parse(&s))
                    .ok_or(ReportError::Malformed { scanner: Scanner::Trivy, index, field: "Severity" })?;
                out.push(Finding {
                    id,
                    severity,
                    fix: if fixed { Fix::Available } else { Fix::None },
                    package: str_at(v, "/PkgName"),
                });
            }
        }
        return Ok((Scanner::Trivy, out));
    }
    if let Some(matches) = report.get("matches").and_then(Value::as_array) {
        if matches.len() > MAX_FINDINGS {
            return Err(ReportError::TooMany);
        }
        let mut out = Vec::with_capacity(matches.len());
        for (index, m) in matches.iter().enumerate() {
            let id = str_at(m, "/vulnerability/id").ok_or(ReportError::Malformed {
                scanner: Scanner::Grype,
                index,
                field: "vulnerability.id",
            })?;
            let fixed = str_at(m, "/vulnerability/fix/state").as_deref() == Some("fixed")
                || m.pointer("/vulnerability/fix/versions").and_then(Value::as_array).is_some_and(|v| !v.is_empty());
            let severity = str_at(m, "/vulnerability/severity")
                .and_then(|s| Severity::parse(&s))
                .ok_or(ReportError::Malformed { scanner: Scanner::Grype, index, field: "vulnerability.severity" })?;
            out.push(Finding {
                id,
                severity,
                fix: if fixed { Fix::Available } else { Fix::None },
                package: str_at(m, "/artifact/name"),
            });
        }
        return Ok((Scanner::Grype, out));
    }
    Err(ReportError::UnknownFormat)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn trivy_and_grype_findings() {
        let trivy = json!({"SchemaVersion": 2, "Results": [
            {"Target": "os", "Vulnerabilities": [
                {"VulnerabilityID": "CVE-1", "PkgName": "openssl", "Severity": "CRITICAL", "FixedVersion": "3.0.1"},
                {"VulnerabilityID": "CVE-2", "PkgName": "zlib", "Severity": "LOW", "Status": "affected"}]},
            {"Target": "app", "Vulnerabilities": null}]});
        let (s, f) = findings(&trivy).unwrap();
        assert_eq!(s, Scanner::Trivy);
        assert_eq!(f.len(), 2);
        assert_eq!((f[0].severity, f[0].fix), (Severity::Critical, Fix::Available));
        assert_eq!((f[1].severity, f[1].fix), (Severity::Low, Fix::None));
        let grype = json!({"matches": [
            {"vulnerability": {"id": "GHSA-1", "severity": "High", "fix": {"state": "fixed", "versions": ["1.2"]}}, "artifact": {"name": "lib"}},
            {"vulnerability": {"id": "CVE-3", "severity": "Negligible", "fix": {"state": "wont-fix", "versions": []}}}]});
        let (s, f) = findings(&grype).unwrap();
        assert_eq!(s, Scanner::Grype);
        assert_eq!((f[0].severity, f[0].fix, f[0].package.as_deref()), (Severity::High, Fix::Available, Some("lib")));
        assert_eq!((f[1].severity, f[1].fix), (Severity::Negligible, Fix::None));
        // Wrapped in cosign's vuln predicate.
        let wrapped = json!({"scanner": {"uri": "trivy", "result": trivy}});
        assert_eq!(findings(report_of(&wrapped)).unwrap().1.len(), 2);
    }

    #[test]
    fn unreadable_reports_are_errors_not_empty() {
        assert_eq!(findings(&json!({"foo": 1})), Err(ReportError::UnknownFormat));
        assert!(matches!(
            findings(&json!({"matches": [{"vulnerability": {"severity": "High"}}]})),
            Err(ReportError::Malformed { field: "vulnerability.id", .. })
        ));
        assert!(findings(&json!({"Results": [{"Vulnerabilities": {"x": 1}}]})).is_err());
    }

    #[test]
    fn severities_order_as_the_scanners_do() {
        assert!(Severity::Unknown < Severity::Negligible && Severity::Negligible < Severity::Low);
        assert!(Severity::High < Severity::Critical);
        assert_eq!(Severity::parse("MODERATE"), Some(Severity::Medium));
        assert_eq!(Severity::parse("UNKNOWN"), Some(Severity::Unknown));
        assert_eq!(Severity::parse("whatever"), None);
    }

    // see: issue 11
    #[test]
    fn a_finding_with_a_severity_no_scanner_writes_is_not_read_as_the_lowest() {
        for report in [
            json!({"Results": [{"Vulnerabilities": [{"VulnerabilityID": "CVE-1", "Severity": "SEVERE"}]}]}),
            json!({"Results": [{"Vulnerabilities": [{"VulnerabilityID": "CVE-1"}]}]}),
            json!({"matches": [{"vulnerability": {"id": "CVE-1", "severity": "bad"}}]}),
        ] {
            assert!(matches!(findings(&report), Err(ReportError::Malformed { .. })), "{report}");
        }
    }
}
