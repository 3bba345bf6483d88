//! Refreshing the trusted root through TUF, against a TUF repository test double (built with
//! python-tuf, served over loopback HTTP): tuf-repo-cdn.sigstore.dev cannot be reached here.
//! The repository serves the Sigstore staging trusted root from the vendored testdata/vectors.

mod common;

use common::*;
use serde_json::Value;

#[test]
fn trusted_root_update_through_tuf_and_offline_use() {
    let vectors = conformance_suite();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // rekor2-happy-path is signed on staging and ships the staging trusted root.
    let case = vectors.join("rekor2-happy-path");
    let (_server, url, pinned) = tuf_double(&d.join("tuf"), &case.join("trusted_root.json"), None);
    let cache = d.join("cache");
    let env = [
        ("SIGIL_TUF_CACHE", cache.to_str().unwrap()),
        ("SIGIL_TUF_URL", url.as_str()),
        ("SIGIL_TUF_ROOT", pinned.to_str().unwrap()),
    ];

    // Before any update, with a custom TUF repository named: no trusted root for it, and the
    // public-good root embedded in the binary is never used in its place.
    let bundle = case.join("bundle.sigstore.json");
    let a = vectors.join("a.txt");
    let id = "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main";
    let verify = |env: &[(&str, &str)]| {
        sigil_env(
            d,
            &[
                "verify-blob",
                "--bundle",
                bundle.to_str().unwrap(),
                "--certificate-identity",
                id,
                "--certificate-oidc-issuer",
                "https://token.actions.githubusercontent.com",
                a.to_str().unwrap(),
            ],
            env,
        )
    };
    let out = verify(&env);
    assert_code(&out, 14);
    assert!(stderr(&out).contains("no TUF cache"), "{}", stderr(&out));
    // Without a TUF repository named: the embedded public-good root, said loudly; it does not
    // know the staging instance.
    let out = verify(&[("SIGIL_TUF_CACHE", cache.to_str().unwrap())]);
    assert!(
        stderr(&out).contains("embedded in this build") && stderr(&out).contains("no TUF cache"),
        "{}",
        stderr(&out)
    );
    assert_code(&out, 12);

    // Update through TUF, then verification reads the cache offline.
    let out = sigil_env(d, &["trusted-root", "update", "--timeout", "20"], &env);
    assert_code(&out, 0);
    let t: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(t["source"]["kind"], "tuf");
    let out = verify(&env);
    assert_code(&out, 0);
    assert!(stderr(&out).contains("from the TUF cache"), "{}", stderr(&out));
    // see: issue 8 §5 — the cached file in use and its digest, on stderr and in JSON.
    let served = sigil::digest::Digest::sha256(&std::fs::read(case.join("trusted_root.json")).unwrap()).to_string();
    let v: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(v["trustRoot"]["source"], "tuf-cache");
    assert_eq!(v["trustRoot"]["url"], url.as_str());
    assert_eq!(v["trustRoot"]["sha256"], served.as_str());
    let file = v["trustRoot"]["path"].as_str().unwrap();
    assert!(file.starts_with(cache.to_str().unwrap()) && file.ends_with("trusted_root.json"), "{file}");
    assert!(stderr(&out).contains(&format!("{file} ({served})")), "{}", stderr(&out));

    // A cache that no longer verifies is not used, and stderr says it is stale.
    let folder = std::fs::read_dir(&cache).unwrap().next().unwrap().unwrap().path();
    std::fs::write(folder.join("timestamp.json"), b"{}").unwrap();
    let out = verify(&env);
    assert!(stderr(&out).contains("STALE"), "{}", stderr(&out));
    assert_code(&out, 14);

    // A tampered target is refused by TUF: the update fails and says why.
    let targets = d.join("tuf/repo/targets");
    for e in std::fs::read_dir(&targets).unwrap() {
        let p = e.unwrap().path();
        let mut bytes = std::fs::read(&p).unwrap();
        bytes.extend_from_slice(b" ");
        std::fs::write(&p, bytes).unwrap();
    }
    let _ = std::fs::remove_dir_all(&cache);
    let out = sigil_env(d, &["trusted-root", "update", "--timeout", "20"], &env);
    assert_code(&out, 14);
    assert!(stderr(&out).contains("could not refresh"), "{}", stderr(&out));

    // No network to the public-good repository here: a clear "could not check".
    let out =
        sigil_env(d, &["trusted-root", "update", "--timeout", "10"], &[("SIGIL_TUF_CACHE", cache.to_str().unwrap())]);
    assert_code(&out, 14);
    assert!(stderr(&out).contains("tuf-repo-cdn.sigstore.dev"), "{}", stderr(&out));
}
