//! `sigil inspect`: the auditor's report of what verified (signatures, attestations with
//! summaries), and — only when asked — what did not, marked as such.

mod common;

use common::*;
use serde_json::Value;

const SLSA: &str = r#"{"buildDefinition":{"buildType":"https://example.com/build/v1","externalParameters":{},"resolvedDependencies":[{"uri":"git+https://github.com/org/app@refs/heads/main","digest":{"gitCommit":"c0ffee"}},{"uri":"pkg:docker/debian@12","digest":{"sha256":"aa"}}]},"runDetails":{"builder":{"id":"https://ci.example.com/builder"},"metadata":{"startedOn":"2026-11-01T10:00:00Z","finishedOn":"2026-11-01T10:07:00Z"}}}"#;
const SPDX: &str = r#"{"spdxVersion":"SPDX-2.3","documentDescribes":["SPDXRef-app"],"packages":[{"SPDXID":"SPDXRef-app","name":"app"},{"SPDXID":"SPDXRef-z","name":"zlib"}]}"#;
const VULN: &str = r#"{"invocation":{"parameters":null,"uri":"","event_id":"","builder.id":""},"scanner":{"uri":"pkg:github/aquasecurity/trivy","version":"0.57.0","db":{"uri":"","version":""},"result":{"Results":[{"Vulnerabilities":[{"VulnerabilityID":"CVE-1","Severity":"CRITICAL"},{"VulnerabilityID":"CVE-2","Severity":"LOW"},{"VulnerabilityID":"CVE-3","Severity":"LOW"}]}]}},"metadata":{"scanStartedOn":"2026-11-01T10:08:00Z","scanFinishedOn":"2026-11-01T10:09:00Z"}}"#;

#[test]
fn inspect_reports_verified_material_and_marks_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_code(&sigil(d, &["generate-key-pair"]), 0);
    assert_code(&sigil(d, &["generate-key-pair", "--output-key-prefix", "other"]), 0);
    layout_with_image(&d.join("img"), "v1", "inspect");
    for (f, c) in [("slsa.json", SLSA), ("spdx.json", SPDX), ("vuln.json", VULN)] {
        std::fs::write(d.join(f), c).unwrap();
    }
    let img = "oci:img:v1";
    assert_code(&sigil(d, &["sign", "--key", "sigil.key", img]), 0);
    for (t, f) in [("slsaprovenance1", "slsa.json"), ("spdxjson", "spdx.json"), ("vuln", "vuln.json")] {
        assert_code(&sigil(d, &["attest", "--key", "sigil.key", "--type", t, "--predicate", f, img]), 0);
    }
    // Signed with another key: not verified with sigil.pub.
    assert_code(&sigil(d, &["attest", "--key", "other.key", "--type", "spdxjson", "--predicate", "spdx.json", img]), 0);
    // An SBOM attached unsigned.
    assert_code(&sigil(d, &["attach", "sbom", "--sbom", "spdx.json", img]), 0);

    let out = sigil(d, &["inspect", "--key", "sigil.pub", "-o", "json", img]);
    assert_code(&out, 0);
    let v: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    let r = &v["report"];
    assert_eq!(r["signatures"].as_array().unwrap().len(), 1);
    assert_eq!(r["signatures"][0]["verified"], true);
    assert_eq!(r["signatures"][0]["signer"]["kind"], "key");
    let atts = r["attestations"].as_array().unwrap();
    assert_eq!(atts.len(), 3, "{r}");
    assert!(atts.iter().all(|a| a["verified"] == true));
    let by_type = |t: &str| atts.iter().find(|a| a["predicateType"] == t).unwrap()["summary"].clone();
    let slsa = by_type("https://slsa.dev/provenance/v1");
    assert_eq!(slsa["kind"], "slsa-provenance");
    assert_eq!(slsa["builder"], "https://ci.example.com/builder");
    assert_eq!(slsa["sourceRepository"], "https://github.com/org/app");
    assert_eq!(slsa["sourceCommit"], "c0ffee");
    assert_eq!(slsa["startedOn"], "2026-11-01T10:00:00Z");
    assert_eq!(slsa["resolvedDependencyCount"], 2);
    let sbom = by_type("https://spdx.dev/Document");
    assert_eq!(sbom, serde_json::json!({"kind": "sbom", "format": "SPDX-2.3", "packages": 2, "topLevel": ["app"]}));
    let vuln = by_type("https://cosign.sigstore.dev/attestation/vuln/v1");
    assert_eq!(vuln["bySeverity"], serde_json::json!({"critical": 1, "low": 2}));
    assert_eq!(vuln["scanner"], "pkg:github/aquasecurity/trivy");
    assert_eq!(r["sboms"].as_array().unwrap().len(), 0);
    assert_eq!(r["hiddenUnverified"], 2, "the other key's attestation and the unsigned SBOM");

    // Asked for: the rest, marked unverified, with why.
    let out = sigil(d, &["inspect", "--key", "sigil.pub", "--include-unverified", "-o", "json", img]);
    assert_code(&out, 0);
    let v: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    let r = &v["report"];
    let atts = r["attestations"].as_array().unwrap();
    assert_eq!(atts.len(), 4);
    let bad = atts.iter().find(|a| a["verified"] == false).unwrap();
    assert_eq!(bad["predicateType"], "https://spdx.dev/Document");
    assert!(bad["reason"].as_str().unwrap().contains("signature"), "{bad}");
    assert!(bad.get("signer").is_none());
    assert_eq!(r["sboms"][0]["verified"], false);
    assert_eq!(r["sboms"][0]["summary"]["packages"], 2);
    assert_eq!(r["hiddenUnverified"], 0);

    // The readable report.
    let out = sigil(d, &["inspect", "--key", "sigil.pub", "--include-unverified", img]);
    assert_code(&out, 0);
    let text = stdout(&out);
    for want in [
        "Signatures: 1 verified",
        "Attestations: 3 verified",
        "builder:    https://ci.example.com/builder",
        "source:     https://github.com/org/app @ c0ffee",
        "SBOM SPDX-2.3: 2 package(s)",
        "findings: 3 (critical 1, low 2)",
        "✗ UNVERIFIED https://spdx.dev/Document",
        "UNVERIFIED (unsigned)",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
    // Another key: nothing verified, everything hidden unless asked.
    let out = sigil(d, &["inspect", "--key", "other.pub", "-o", "json", img]);
    let v: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(v["report"]["signatures"].as_array().unwrap().len(), 0);
    assert_eq!(v["report"]["attestations"].as_array().unwrap().len(), 1);
    assert_eq!(v["report"]["hiddenUnverified"], 5);
    // Missing image.
    assert_code(&sigil(d, &["inspect", "--key", "sigil.pub", "oci:img:nope"]), 11);
}

/// Bundles (cosign 3's format) are read by `inspect`, `tree` and `download attestation` like
/// the legacy tags, each entry saying which format it came from; an attestation bundle is
/// listed among attestations, never among signatures.
// see: issue 9
#[test]
fn inspect_tree_and_download_read_bundle_referrers() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_code(&sigil(d, &["generate-key-pair"]), 0);
    layout_with_image(&d.join("img"), "v1", "inspect-bundles");
    std::fs::write(d.join("slsa.json"), SLSA).unwrap();
    std::fs::write(d.join("spdx.json"), SPDX).unwrap();
    let img = "oci:img:v1";
    assert_code(&sigil(d, &["sign", "--format", "bundle", "--key", "sigil.key", img]), 0);
    assert_code(&sigil(d, &["sign", "--format", "legacy", "--key", "sigil.key", img]), 0);
    let attest = |t: &str, f: &str| {
        sigil(d, &["attest", "--format", "bundle", "--key", "sigil.key", "--type", t, "--predicate", f, img])
    };
    assert_code(&attest("slsaprovenance1", "slsa.json"), 0);
    assert_code(&attest("spdxjson", "spdx.json"), 0);

    let out = sigil(d, &["inspect", "--key", "sigil.pub", "-o", "json", img]);
    assert_code(&out, 0);
    let v: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    let r = &v["report"];
    let mut sig_formats: Vec<&str> =
        r["signatures"].as_array().unwrap().iter().map(|s| s["format"].as_str().unwrap()).collect();
    sig_formats.sort();
    assert_eq!(sig_formats, ["bundle", "legacy"], "{r}");
    let atts = r["attestations"].as_array().unwrap();
    assert_eq!(atts.len(), 2, "{r}");
    assert!(atts.iter().all(|a| a["verified"] == true && a["format"] == "bundle"), "{r}");
    let slsa = atts.iter().find(|a| a["predicateType"] == "https://slsa.dev/provenance/v1").unwrap();
    assert_eq!(slsa["summary"]["builder"], "https://ci.example.com/builder");
    assert_eq!(r["hiddenUnverified"], 0);

    // tree: the referrers, labelled from their (unsigned) annotations.
    let out = sigil(d, &["tree", img]);
    assert_code(&out, 0);
    let text = stdout(&out);
    assert_eq!(text.matches("Sigstore bundle: signature").count(), 1, "{text}");
    assert!(text.contains("Sigstore bundle: attestation https://slsa.dev/provenance/v1"), "{text}");

    // download attestation: the attestation bundles (not the signature), filtered by type.
    let out = sigil(d, &["download", "attestation", "--predicate-type", "spdxjson", img]);
    assert_code(&out, 0);
    let printed = stdout(&out);
    let lines: Vec<&str> = printed.lines().collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    let bundle: Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(bundle["mediaType"], "application/vnd.dev.sigstore.bundle.v0.3+json");
    let out = sigil(d, &["download", "attestation", img]);
    assert_eq!(stdout(&out).lines().count(), 2);
    let out = sigil(d, &["download", "attestation", "--format", "legacy", img]);
    assert_code(&out, 10);
}

// see: issue 9
#[test]
fn inspect_and_source_check_agree_on_slsa_source_through_the_cli() {
    // SLSA v0.2 without configSource, its source only in materials[0] with a `.git` suffix:
    // inspect used to show "https://github.com/org/app.git" while --source-uri found no source.
    const SLSA02: &str = r#"{"builder":{"id":"https://ci.example.com/builder"},"buildType":"https://example.com/build/v1","materials":[{"uri":"git+https://github.com/org/app.git@refs/heads/main","digest":{"sha1":"c0ffee"}}]}"#;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_code(&sigil(d, &["generate-key-pair"]), 0);
    layout_with_image(&d.join("img"), "v1", "source");
    std::fs::write(d.join("slsa.json"), SLSA02).unwrap();
    let img = "oci:img:v1";
    assert_code(
        &sigil(d, &["attest", "--key", "sigil.key", "--type", "slsaprovenance02", "--predicate", "slsa.json", img]),
        0,
    );
    let out = sigil(d, &["inspect", "--key", "sigil.pub", "-o", "json", img]);
    assert_code(&out, 0);
    let v: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    let summary = &v["report"]["attestations"][0]["summary"];
    assert_eq!(summary["sourceRepository"], "https://github.com/org/app", "{summary}");
    assert_eq!(summary["sourceCommit"], "c0ffee");
    let shown = summary["sourceRepository"].as_str().unwrap();
    let check = |uri: &str| {
        sigil(
            d,
            &[
                "verify-attestation",
                "--key",
                "sigil.pub",
                "--type",
                "slsaprovenance02",
                "--source-uri",
                uri,
                "--source-branch",
                "main",
                "--source-digest",
                "c0ffee",
                img,
            ],
        )
    };
    for uri in [shown, "github.com/org/app"] {
        let out = check(uri);
        assert_code(&out, 0);
        assert_eq!(stdout(&out).lines().count(), 1, "{uri}");
    }
    let out = check("github.com/org/other");
    assert_code(&out, 12);
    let err = stderr(&out);
    assert!(
        err.contains(
            r#"source uri: expected "https://github.com/org/other", statement has "https://github.com/org/app""#
        ),
        "{err}"
    );
}
