//! The sigstore-conformance offline verification suite (vendored in testdata/vectors):
//! 70 cases, each run with the artifact file and with `sha256:<hex>` of it, through the CLI.
//! Every verdict must be right, and every rejection must name the check that failed.

mod common;

use std::path::PathBuf;

use common::*;
use sha2::Digest as _;

const DEFAULT_IDENTITY: &str = "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main";
const DEFAULT_ISSUER: &str = "https://token.actions.githubusercontent.com";
const CHECKS: &[&str] = &[
    "bundle format",
    "certificate chain",
    "certificate identity",
    "OIDC issuer",
    "signature",
    "artifact digest",
    "artifact input",
    "certificate",
    "transparency log",
    "timestamp",
    "trusted root",
    "public key",
    "in-toto statement",
    "verification",
];

#[test]
fn sigstore_conformance_bundle_verify() {
    let vectors = vectors();
    let suite = vectors.join("sigstore-conformance/bundle-verify");
    let public_good = vectors.join("trust/public-good.trusted_root.json");
    let mut cases: Vec<PathBuf> =
        std::fs::read_dir(&suite).unwrap().map(|e| e.unwrap().path()).filter(|p| p.is_dir()).collect();
    cases.sort();
    assert_eq!(cases.len(), 70, "the suite has 70 cases");
    let work = tempfile::tempdir().unwrap();
    let (mut right, mut wrong) = (0, Vec::new());
    for case in &cases {
        let name = case.file_name().unwrap().to_string_lossy().to_string();
        let expect_ok = !name.ends_with("_fail");
        let read = |f: &str| std::fs::read_to_string(case.join(f)).ok().map(|s| s.trim().to_string());
        let artifact = if case.join("artifact").exists() { case.join("artifact") } else { suite.join("a.txt") };
        let digest = format!("sha256:{}", hex::encode(sha2::Sha256::digest(std::fs::read(&artifact).unwrap())));
        let root =
            if case.join("trusted_root.json").exists() { case.join("trusted_root.json") } else { public_good.clone() };
        for target in [artifact.to_str().unwrap().to_string(), digest] {
            let mut args: Vec<String> = vec![
                "verify-blob".into(),
                "--bundle".into(),
                case.join("bundle.sigstore.json").to_str().unwrap().into(),
            ];
            args.extend(["--trusted-root".into(), root.to_str().unwrap().into()]);
            match read("key.pub") {
                Some(_) => args.extend(["--key".into(), case.join("key.pub").to_str().unwrap().into()]),
                None => {
                    args.extend(["--certificate-identity".into(), read("identity").unwrap_or(DEFAULT_IDENTITY.into())]);
                    args.extend(["--certificate-oidc-issuer".into(), read("issuer").unwrap_or(DEFAULT_ISSUER.into())]);
                }
            }
            args.push(target.clone());
            let argv: Vec<&str> = args.iter().map(String::as_str).collect();
            let out = sigil(work.path(), &argv);
            let mode = if target.starts_with("sha256:") { "digest" } else { "file" };
            let ok = code(&out) == 0;
            let err = stderr(&out);
            if ok == expect_ok {
                match code(&out) {
                    0 => {}
                    // Verification said no: the checklist line names the failed check.
                    12 => {
                        let line = err.lines().find(|l| l.contains("✗")).unwrap_or("");
                        assert!(
                            CHECKS.iter().any(|c| line.contains(&format!("✗ {c}:"))),
                            "{name} ({mode}): no check named: {err}"
                        );
                    }
                    // Could not check: only unusable trust material, said so.
                    14 => assert!(err.contains("trusted root"), "{name} ({mode}): {err}"),
                    other => panic!("{name} ({mode}): unexpected exit {other}: {err}"),
                }
                right += 1;
            } else {
                wrong.push(format!(
                    "{name} ({mode}): expected {}, got exit {}: {}",
                    if expect_ok { "verified" } else { "rejected" },
                    code(&out),
                    err.lines().last().unwrap_or("")
                ));
            }
        }
    }
    eprintln!("sigstore-conformance bundle-verify: {right}/{} verdicts right", cases.len() * 2);
    assert!(wrong.is_empty(), "{} wrong verdicts:\n{}", wrong.len(), wrong.join("\n"));
}
