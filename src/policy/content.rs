//! Content checks on verified statements: SLSA provenance fields (slsa-verifier style, read
//! by [`crate::predicates::slsa`]) and general `PATH=VALUE` / `PATH~=REGEX` checks on JSON
//! paths. Pure; the deploy-gate policy file will reuse these.

use std::fmt;

use serde_json::Value;

use crate::predicates;

/// A check on one JSON path of the statement.
#[derive(Debug, Clone)]
pub enum PathCheck {
    /// The value at `path` equals `value` (strings compared as strings, others as JSON text).
    Equals {
        /// Dotted path from the statement root, e.g. `predicate.scanner.uri`.
        path: String,
        /// The expected value.
        value: String,
    },
    /// The string (or JSON text) at `path` matches the anchored expression.
    Matches {
        /// Dotted path.
        path: String,
        /// Anchored expression.
        regex: crate::identity::Matcher,
    },
}

impl PathCheck {
    /// Parses `PATH=VALUE` or `PATH~=REGEX`.
    pub fn parse(s: &str) -> Result<Self, String> {
        if let Some((p, re)) = s.split_once("~=") {
            let regex = crate::identity::Matcher::regex(re).map_err(|e| format!("{s:?}: {e}"))?;
            return Ok(PathCheck::Matches { path: p.to_owned(), regex });
        }
        match s.split_once('=') {
            Some((p, v)) if !p.is_empty() => Ok(PathCheck::Equals { path: p.to_owned(), value: v.to_owned() }),
            _ => Err(format!("{s:?} is not PATH=VALUE or PATH~=REGEX")),
        }
    }
}

/// What `verify-attestation` requires of SLSA provenance.
#[derive(Debug, Clone, Default)]
pub struct SlsaExpectations {
    /// `--builder-id`.
    pub builder_id: Option<String>,
    /// `--source-uri` (e.g. `github.com/org/repo`).
    pub source_uri: Option<String>,
    /// `--source-branch`.
    pub source_branch: Option<String>,
    /// `--source-tag`.
    pub source_tag: Option<String>,
    /// `--source-digest` (git commit).
    pub source_digest: Option<String>,
}

/// A failed content check: the field and both values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// Which field.
    pub field: String,
    /// What was required.
    pub expected: String,
    /// What the statement says (or "missing").
    pub actual: String,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: expected {:?}, statement has {}", self.field, self.expected, self.actual)
    }
}

/// The value at a dotted path (`a.b.0.c`: numbers index arrays).
pub fn lookup<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').filter(|k| !k.is_empty()).try_fold(v, |cur, k| match cur {
        Value::Array(a) => k.parse::<usize>().ok().and_then(|i| a.get(i)),
        _ => cur.get(k),
    })
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Applies path checks to a statement.
pub fn check_paths(statement: &Value, checks: &[PathCheck]) -> Result<(), Mismatch> {
    for c in checks {
        let (path, ok, expected) = match c {
            PathCheck::Equals { path, value } => {
                (path, lookup(statement, path).is_some_and(|v| text(v) == *value), value.clone())
            }
            PathCheck::Matches { path, regex } => {
                (path, lookup(statement, path).is_some_and(|v| regex.matches(&text(v))), regex.to_string())
            }
        };
        if !ok {
            let actual = lookup(statement, path).map(|v| format!("{:?}", text(v))).unwrap_or_else(|| "missing".into());
            return Err(Mismatch { field: path.clone(), expected, actual });
        }
    }
    Ok(())
}

/// Applies the SLSA expectations; each mismatch names the field and both values. The builder
/// and source are read by [`predicates::slsa`], the extraction `inspect` shows; the wanted
/// `--source-uri` is put in the same form ([`predicates::repository_of`]: `github.com/org/repo`
/// means `https://github.com/org/repo`). A statement that is not SLSA provenance has none of
/// these fields, so any expectation fails on it.
pub fn check_slsa(statement: &Value, want: &SlsaExpectations) -> Result<(), Mismatch> {
    let predicate_type = statement.get("predicateType").and_then(Value::as_str).unwrap_or_default();
    let predicate = statement.get("predicate").unwrap_or(&Value::Null);
    let have = predicates::slsa(predicate_type, predicate);
    let (builder, source) = match have {
        Some(p) => (p.builder, p.source),
        None => (None, None),
    };
    let (uri, git_ref, commit) = match source {
        Some(s) => (Some(s.repository), s.git_ref, s.commit),
        None => (None, None, None),
    };
    let cmp = |field: &str, want: &Option<String>, have: Option<String>| -> Result<(), Mismatch> {
        match want {
            Some(w) if have.as_deref() != Some(w.as_str()) => Err(Mismatch {
                field: field.to_owned(),
                expected: w.clone(),
                actual: have.map(|h| format!("{h:?}")).unwrap_or_else(|| "missing".into()),
            }),
            _ => Ok(()),
        }
    };
    let uri_want = want.source_uri.as_deref().map(predicates::repository_of);
    cmp("builder id", &want.builder_id, builder)?;
    cmp("source uri", &uri_want, uri)?;
    cmp(
        "source branch",
        &want.source_branch,
        git_ref.as_deref().and_then(|r| r.strip_prefix("refs/heads/")).map(str::to_owned),
    )?;
    cmp(
        "source tag",
        &want.source_tag,
        git_ref.as_deref().and_then(|r| r.strip_prefix("refs/tags/")).map(str::to_owned),
    )?;
    cmp("source digest", &want.source_digest, commit)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v1() -> Value {
        serde_json::json!({
            "predicateType": "https://slsa.dev/provenance/v1",
            "predicate": {
                "buildDefinition": {"buildType": "t", "externalParameters": {}, "resolvedDependencies": [
                    {"uri": "git+https://github.com/org/repo@refs/heads/main", "digest": {"gitCommit": "abc123"}}
                ]},
                "runDetails": {"builder": {"id": "https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_generic_slsa3.yml@refs/tags/v2.0.0"}}
            }
        })
    }

    #[test]
    fn slsa_checks_name_field_and_values() {
        let want = SlsaExpectations {
            source_uri: Some("github.com/org/repo".into()),
            source_branch: Some("main".into()),
            source_digest: Some("abc123".into()),
            ..Default::default()
        };
        assert!(check_slsa(&v1(), &want).is_ok());
        let wrong = SlsaExpectations { source_branch: Some("release".into()), ..Default::default() };
        let m = check_slsa(&v1(), &wrong).unwrap_err();
        assert_eq!(m.to_string(), r#"source branch: expected "release", statement has "main""#);
        let tag = SlsaExpectations { source_tag: Some("v1".into()), ..Default::default() };
        assert_eq!(check_slsa(&v1(), &tag).unwrap_err().actual, "missing");
        let v02 = serde_json::json!({"predicateType": "https://slsa.dev/provenance/v0.2", "predicate": {"builder": {"id": "B"},
            "invocation": {"configSource": {"uri": "git+https://github.com/org/repo@refs/tags/v1", "digest": {"sha1": "d"}}}}});
        let want = SlsaExpectations {
            builder_id: Some("B".into()),
            source_tag: Some("v1".into()),
            source_digest: Some("d".into()),
            ..Default::default()
        };
        assert!(check_slsa(&v02, &want).is_ok());
    }

    // see: issue 9
    #[test]
    fn inspect_and_source_check_agree_on_slsa_source() {
        use crate::report::{summarize, Summary};
        // Provenance where `inspect` and `--source-uri` used to read different sources: no
        // configSource (the check saw none, inspect showed materials[0]); a `.git` suffix
        // (inspect kept it, the check dropped it); v1 with only the workflow parameters
        // (inspect showed the repository, the check saw none).
        let cases = [
            (
                predicates::SLSA_PROVENANCE_V02,
                serde_json::json!({"builder": {"id": "B"}, "buildType": "t",
                    "materials": [{"uri": "git+https://github.com/org/repo@refs/heads/main", "digest": {"sha1": "d"}}]}),
            ),
            (
                predicates::SLSA_PROVENANCE_V02,
                serde_json::json!({"builder": {"id": "B"}, "buildType": "t",
                    "invocation": {"configSource": {"uri": "git+https://github.com/org/repo.git@refs/heads/main", "digest": {"sha1": "d"}}}}),
            ),
            (
                predicates::SLSA_PROVENANCE_V1,
                serde_json::json!({"buildDefinition": {"buildType": "t", "externalParameters": {
                    "workflow": {"repository": "https://github.com/org/repo", "ref": "refs/heads/main", "path": ".github/workflows/b.yml"}}},
                    "runDetails": {"builder": {"id": "B"}}}),
            ),
        ];
        for (predicate_type, predicate) in cases {
            let Summary::SlsaProvenance { source_repository: Some(shown), .. } = summarize(predicate_type, &predicate)
            else {
                panic!("no source shown for {predicate}")
            };
            assert_eq!(shown, "https://github.com/org/repo", "{predicate}");
            let statement = serde_json::json!({"predicateType": predicate_type, "predicate": predicate});
            // What inspect shows passes the check, as do the forms users type…
            for uri in [shown.as_str(), "github.com/org/repo", "git+https://github.com/org/repo.git"] {
                let want = SlsaExpectations {
                    source_uri: Some(uri.into()),
                    source_branch: Some("main".into()),
                    ..Default::default()
                };
                assert!(check_slsa(&statement, &want).is_ok(), "{uri} on {predicate}");
            }
            // …and another repository or scheme does not.
            for uri in ["github.com/org/other", "http://github.com/org/repo"] {
                let want = SlsaExpectations { source_uri: Some(uri.into()), ..Default::default() };
                let m = check_slsa(&statement, &want).unwrap_err();
                assert_eq!(m.actual, format!("{shown:?}"), "{uri}");
            }
        }
    }

    #[test]
    fn path_checks() {
        let s = serde_json::json!({"predicate": {"scanner": {"uri": "trivy"}, "counts": {"critical": 0}, "list": [{"a": "x"}]}});
        let ok = [
            PathCheck::parse("predicate.scanner.uri=trivy").unwrap(),
            PathCheck::parse("predicate.counts.critical=0").unwrap(),
            PathCheck::parse("predicate.list.0.a~=x|y").unwrap(),
        ];
        assert!(check_paths(&s, &ok).is_ok());
        let m = check_paths(&s, &[PathCheck::parse("predicate.counts.critical=1").unwrap()]).unwrap_err();
        assert_eq!(m.field, "predicate.counts.critical");
        assert!(check_paths(&s, &[PathCheck::parse("predicate.nope=1").unwrap()]).is_err());
        assert!(check_paths(&s, &[PathCheck::parse("predicate.scanner.uri~=tri").unwrap()]).is_err(), "anchored");
        assert!(PathCheck::parse("novalue").is_err());
    }
}
