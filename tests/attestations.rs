//! Attestations: in-toto statements in DSSE envelopes attached the cosign way, verified by
//! sigil and by cosign, both ways.

mod common;

use common::*;
use serde_json::Value;

const SLSA1: &str = r#"{"buildDefinition":{"buildType":"https://example.com/build/v1","externalParameters":{"ref":"refs/heads/main"},"resolvedDependencies":[{"uri":"git+https://github.com/org/repo@refs/heads/main","digest":{"gitCommit":"0123abcd"}}]},"runDetails":{"builder":{"id":"https://example.com/builder"}}}"#;

#[test]
fn attest_and_verify_on_a_layout() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_code(&sigil(d, &["generate-key-pair"]), 0);
    layout_with_image(&d.join("img"), "v1", "att");
    std::fs::write(d.join("slsa.json"), SLSA1).unwrap();
    std::fs::write(d.join("vex.json"), r#"{"@context":"https://openvex.dev/ns/v0.2.0","statements":[]}"#).unwrap();
    let out = sigil(
        d,
        &["attest", "--key", "sigil.key", "--type", "slsaprovenance1", "--predicate", "slsa.json", "oci:img:v1"],
    );
    assert_code(&out, 0);
    assert_code(
        &sigil(d, &["attest", "--key", "sigil.key", "--type", "openvex", "--predicate", "vex.json", "oci:img:v1"]),
        0,
    );

    let out = sigil(d, &["verify-attestation", "--key", "sigil.pub", "--type", "slsaprovenance1", "oci:img:v1"]);
    assert_code(&out, 0);
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "only the statements of the requested type");
    let st: Value = serde_json::from_str(lines[0]).unwrap();
    assert_eq!(st["_type"], "https://in-toto.io/Statement/v1");
    assert_eq!(st["predicateType"], "https://slsa.dev/provenance/v1");
    assert_eq!(st["predicate"]["runDetails"]["builder"]["id"], "https://example.com/builder");
    // Both attestations are kept; without --type both verify.
    let out = sigil(d, &["verify-attestation", "--key", "sigil.pub", "oci:img:v1"]);
    assert_eq!(stdout(&out).lines().count(), 2);
    // No attestation of the requested type: fails (cosign's CVE-2022-35929 class).
    let out = sigil(d, &["verify-attestation", "--key", "sigil.pub", "--type", "cyclonedx", "oci:img:v1"]);
    assert_code(&out, 12);
    assert!(stdout(&out).is_empty());
    // SLSA content checks (slsa-verifier style) and general path checks.
    let base = ["verify-attestation", "--key", "sigil.pub", "--type", "slsaprovenance1"];
    let with = |extra: &[&str]| {
        let mut a = base.to_vec();
        a.extend_from_slice(extra);
        a.push("oci:img:v1");
        sigil(d, &a)
    };
    let ok = with(&[
        "--builder-id",
        "https://example.com/builder",
        "--source-uri",
        "github.com/org/repo",
        "--source-branch",
        "main",
        "--source-digest",
        "0123abcd",
        "--check",
        "predicate.buildDefinition.buildType~=https://example\\.com/.*",
    ]);
    assert_code(&ok, 0);
    let out = with(&["--source-branch", "release"]);
    assert_code(&out, 12);
    assert!(stderr(&out).contains(r#"source branch: expected "release", statement has "main""#), "{}", stderr(&out));
    let out = with(&["--check", "predicate.runDetails.builder.id=https://evil.example"]);
    assert_code(&out, 12);
    assert!(stderr(&out).contains("predicate.runDetails.builder.id"), "{}", stderr(&out));
    // Another key.
    assert_code(&sigil(d, &["generate-key-pair", "--output-key-prefix", "other"]), 0);
    assert_code(&sigil(d, &["verify-attestation", "--key", "other.pub", "oci:img:v1"]), 12);
    // A malformed SLSA predicate is refused before signing, naming the field.
    std::fs::write(
        d.join("bad.json"),
        r#"{"buildDefinition":{"buildType":"t","externalParameters":{}},"runDetails":{}}"#,
    )
    .unwrap();
    let out = sigil(
        d,
        &["attest", "--key", "sigil.key", "--type", "slsaprovenance1", "--predicate", "bad.json", "oci:img:v1"],
    );
    assert_code(&out, 1);
    assert!(stderr(&out).contains("runDetails.builder.id"), "{}", stderr(&out));
    // download attestation: the envelopes as stored (unverified), filtered by the signed type.
    let out = sigil(d, &["download", "attestation", "oci:img:v1"]);
    assert_code(&out, 0);
    assert_eq!(stdout(&out).lines().count(), 2);
    let env: Value = serde_json::from_str(stdout(&out).lines().next().unwrap()).unwrap();
    assert_eq!(env["payloadType"], "application/vnd.in-toto+json");
    let out = sigil(d, &["download", "attestation", "--predicate-type", "openvex", "oci:img:v1"]);
    assert_code(&out, 0);
    assert_eq!(stdout(&out).lines().count(), 1);
    let out = sigil(d, &["download", "attestation", "--predicate-type", "cyclonedx", "oci:img:v1"]);
    assert_code(&out, 10);
    assert!(stdout(&out).is_empty());
    // --max-size: the former name, kept as a hidden alias of --max-blob-size (see: issue 12).
    let out = sigil(d, &["download", "attestation", "--max-size", "100", "oci:img:v1"]);
    assert_code(&out, 1);
    assert!(
        stderr(&out).contains("limit of 100 bytes") && stderr(&out).contains("--max-blob-size"),
        "{}",
        stderr(&out)
    );
    let out = sigil(d, &["tree", "-o", "json", "oci:img:v1"]);
    let t: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    let att = t["attachments"].as_array().unwrap().iter().find(|a| a["kind"] == "att").unwrap();
    assert_eq!(att["layers"].as_array().unwrap().len(), 2, "nothing added by the refused attest");
    assert_eq!(att["layers"][0]["mediaType"], "application/vnd.dsse.envelope.v1+json");
    assert_eq!(att["layers"][0]["predicateType"], "https://slsa.dev/provenance/v1");
}

#[test]
fn attestations_interoperate_with_cosign() {
    let reg = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_code(&sigil(d, &["generate-key-pair", "--output-key-prefix", "s"]), 0);
    std::fs::write(d.join("slsa.json"), SLSA1).unwrap();
    let store = reg.store("att/app");
    let a = rt().block_on(push_image(&store, Some("a"), "a", "amd64"));
    let b = rt().block_on(push_image(&store, Some("b"), "b", "amd64"));
    let img_a = format!("{}/att/app@{a}", reg.host());
    let img_b = format!("{}/att/app@{b}", reg.host());

    // sigil attests -> cosign verifies.
    assert_code(
        &sigil(
            d,
            &[
                "attest",
                "--allow-http-registry",
                "--key",
                "s.key",
                "--type",
                "slsaprovenance1",
                "--predicate",
                "slsa.json",
                &img_a,
            ],
        ),
        0,
    );
    let out = cosign(
        d,
        &[
            "verify-attestation",
            "--key",
            "s.pub",
            "--insecure-ignore-tlog=true",
            "--allow-http-registry",
            "--type",
            "slsaprovenance1",
            &img_a,
        ],
    );
    assert_code(&out, 0);
    // cosign attests -> sigil verifies.
    let out = cosign(
        d,
        &[
            "attest",
            "--key",
            "s.key",
            "--tlog-upload=false",
            "--yes",
            "--allow-http-registry",
            "--type",
            "slsaprovenance1",
            "--predicate",
            "slsa.json",
            &img_b,
        ],
    );
    assert_code(&out, 0);
    let out = sigil(
        d,
        &["verify-attestation", "--allow-http-registry", "--key", "s.pub", "--type", "slsaprovenance1", &img_b],
    );
    assert_code(&out, 0);
    let st: Value = serde_json::from_str(stdout(&out).lines().next().unwrap()).unwrap();
    assert_eq!(st["predicateType"], "https://slsa.dev/provenance/v1");
    // And both refuse the wrong type.
    assert_code(
        &sigil(d, &["verify-attestation", "--allow-http-registry", "--key", "s.pub", "--type", "cyclonedx", &img_b]),
        12,
    );
    assert_ne!(
        code(&cosign(
            d,
            &[
                "verify-attestation",
                "--key",
                "s.pub",
                "--insecure-ignore-tlog=true",
                "--allow-http-registry",
                "--type",
                "cyclonedx",
                &img_a
            ]
        )),
        0
    );
}

/// The wrapped predicate kinds, both ways with cosign: SPDX tag-value text (`--type spdx`:
/// the predicate is the text as a JSON string), cosign's generic `custom` predicate
/// (`{"Data", "Timestamp"}`), and a whole statement given with `--statement`.
#[test]
fn spdx_text_custom_and_whole_statements_interoperate() {
    let reg = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_code(&sigil(d, &["generate-key-pair", "--output-key-prefix", "s"]), 0);
    let tv = "SPDXVersion: SPDX-2.3\nDataLicense: CC0-1.0\nPackageName: busybox\nPackageName: musl\n";
    std::fs::write(d.join("tv.spdx"), tv).unwrap();
    std::fs::write(d.join("notes.txt"), "built on a Tuesday\n").unwrap();
    let store = reg.store("att/wrapped");
    let a = rt().block_on(push_image(&store, Some("a"), "wa", "amd64"));
    let b = rt().block_on(push_image(&store, Some("b"), "wb", "amd64"));
    let img_a = format!("{}/att/wrapped@{a}", reg.host());
    let img_b = format!("{}/att/wrapped@{b}", reg.host());
    let sigil_attest = |t: &str, f: &str, img: &str| {
        sigil(d, &["attest", "--allow-http-registry", "--key", "s.key", "--type", t, "--predicate", f, img])
    };
    let cosign_attest = |t: &str, f: &str, img: &str| {
        cosign(
            d,
            &[
                "attest",
                "--key",
                "s.key",
                "--tlog-upload=false",
                "--yes",
                "--allow-http-registry",
                "--type",
                t,
                "--predicate",
                f,
                img,
            ],
        )
    };
    let cosign_verify = |t: &str, img: &str| {
        cosign(
            d,
            &[
                "verify-attestation",
                "--key",
                "s.pub",
                "--insecure-ignore-tlog=true",
                "--allow-http-registry",
                "--type",
                t,
                img,
            ],
        )
    };
    let sigil_verify = |t: &str, img: &str| {
        sigil(d, &["verify-attestation", "--allow-http-registry", "--key", "s.pub", "--type", t, img])
    };
    let statement = |out: &std::process::Output| -> Value {
        serde_json::from_str(stdout(out).lines().next().expect("a statement")).unwrap()
    };

    // sigil -> cosign.
    assert_code(&sigil_attest("spdx", "tv.spdx", &img_a), 0);
    assert_code(&sigil_attest("custom", "notes.txt", &img_a), 0);
    assert_code(&cosign_verify("spdx", &img_a), 0);
    assert_code(&cosign_verify("custom", &img_a), 0);
    let st = statement(&sigil_verify("spdx", &img_a));
    assert_eq!(st["predicate"], tv);
    let st = statement(&sigil_verify("custom", &img_a));
    assert_eq!(st["predicateType"], "https://cosign.sigstore.dev/attestation/v1");
    assert_eq!(st["predicate"]["Data"], "built on a Tuesday\n");
    assert!(st["predicate"]["Timestamp"].as_str().unwrap().ends_with('Z'));

    // cosign -> sigil.
    assert_code(&cosign_attest("spdx", "tv.spdx", &img_b), 0);
    assert_code(&cosign_attest("custom", "notes.txt", &img_b), 0);
    assert_eq!(statement(&sigil_verify("spdx", &img_b))["predicate"], tv);
    assert_eq!(statement(&sigil_verify("custom", &img_b))["predicate"]["Data"], "built on a Tuesday\n");

    // A whole statement: signed as given when its subject names the image.
    let whole = serde_json::json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "app", "digest": {"sha256": a.hex()}}],
        "predicateType": "https://example.com/test-result/v1",
        "predicate": {"passed": 412, "failed": 0}
    });
    std::fs::write(d.join("st.json"), whole.to_string()).unwrap();
    let out = sigil(d, &["attest", "--allow-http-registry", "--key", "s.key", "--statement", "st.json", &img_a]);
    assert_code(&out, 0);
    assert_code(&cosign_verify("https://example.com/test-result/v1", &img_a), 0);
    let out = sigil(
        d,
        &[
            "verify-attestation",
            "--allow-http-registry",
            "--key",
            "s.pub",
            "--type",
            "https://example.com/test-result/v1",
            "--check",
            "predicate.failed=0",
            &img_a,
        ],
    );
    assert_code(&out, 0);
    assert_eq!(statement(&out), whole);
    // ... and refused when it does not.
    let out = sigil(d, &["attest", "--allow-http-registry", "--key", "s.key", "--statement", "st.json", &img_b]);
    assert_code(&out, 1);
    assert!(stderr(&out).contains("does not name"), "{}", stderr(&out));
    // --recursive on an index: the statement must name every digest, checked before any write.
    let (index, _children) = rt().block_on(push_index(&store, "multi", "wm"));
    let about_index = serde_json::json!({
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "app", "digest": {"sha256": index.hex()}}],
        "predicateType": "https://example.com/test-result/v1",
        "predicate": {}
    });
    std::fs::write(d.join("idx.json"), about_index.to_string()).unwrap();
    let multi = format!("{}/att/wrapped:multi", reg.host());
    let out = sigil(
        d,
        &["attest", "--allow-http-registry", "--key", "s.key", "--recursive", "--statement", "idx.json", &multi],
    );
    assert_code(&out, 1);
    assert!(stderr(&out).contains("nothing was written"), "{}", stderr(&out));
    assert_code(&sigil(d, &["download", "attestation", "--allow-http-registry", &multi]), 10);
    // SPDX JSON given as tag-value is refused before signing, with the way out.
    std::fs::write(d.join("j.json"), r#"{"spdxVersion":"SPDX-2.3"}"#).unwrap();
    let out = sigil_attest("spdx", "j.json", &img_b);
    assert_code(&out, 1);
    assert!(stderr(&out).contains("spdxjson"), "{}", stderr(&out));
}
