//! SBOMs as OCI 1.1 artifacts: `attach sbom` (streamed upload, referrers tag schema on a
//! registry without the referrers API), `download sbom`, `tree`, concurrent writers.

mod common;

use common::*;
use serde_json::Value;
use sigil::oci::manifest::{Manifest, OCI_EMPTY, OCI_INDEX, OCI_MANIFEST};
use sigil::oci::{ManifestRef, Store};

const SPDX: &str = r#"{"spdxVersion":"SPDX-2.3","SPDXID":"SPDXRef-DOCUMENT","name":"app","packages":[{"name":"openssl","versionInfo":"3.0.11"},{"name":"zlib","versionInfo":"1.3"}]}"#;
const CDX: &str = r#"{"bomFormat":"CycloneDX","specVersion":"1.5","components":[{"type":"library","name":"serde","version":"1.0.200"}]}"#;

fn attach(d: &std::path::Path, file: &str, kind: &str, image: &str) -> std::process::Output {
    sigil(d, &["attach", "sbom", "--allow-http-registry", "--sbom", file, "--type", kind, image])
}

#[test]
fn sbom_attach_download_tree_on_a_registry() {
    let reg = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let store = reg.store("sbom/app");
    let digest = rt().block_on(push_image(&store, Some("v1"), "sbom", "amd64"));
    let image = format!("{}/sbom/app:v1", reg.host());
    std::fs::write(d.join("sbom.spdx.json"), SPDX).unwrap();
    std::fs::write(d.join("bom.cdx.json"), CDX).unwrap();

    let out = attach(d, "sbom.spdx.json", "spdxjson", &image);
    assert_code(&out, 0);
    let first: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(first["attached"]["image"], digest.to_string());
    assert_eq!(first["attached"]["artifactType"], "application/spdx+json");
    assert_eq!(first["attached"]["indexing"]["tag-schema"]["tag"], digest.tag_stem());
    assert_code(&attach(d, "bom.cdx.json", "cyclonedx", &image), 0);

    // The artifact manifest, as the OCI 1.1 image spec has it.
    let m = first["attached"]["manifest"].as_str().unwrap();
    let raw = rt()
        .block_on(store.get_manifest(&ManifestRef::Digest(sigil::digest::Digest::parse(m).unwrap())))
        .unwrap()
        .unwrap();
    let Manifest::Image(art) = Manifest::parse(&raw.bytes).unwrap() else { panic!("not a manifest") };
    assert_eq!(art.media_type.as_deref(), Some(OCI_MANIFEST));
    assert_eq!(art.artifact_type.as_deref(), Some("application/spdx+json"));
    assert_eq!(art.config.media_type, OCI_EMPTY);
    assert_eq!(art.subject.as_ref().unwrap().digest, digest);
    assert_eq!(art.layers[0].size, SPDX.len() as u64);
    // The referrers tag-schema index lists both, with their artifact types.
    let raw = rt().block_on(store.get_manifest(&ManifestRef::Tag(digest.tag_stem()))).unwrap().unwrap();
    let Manifest::Index(idx) = Manifest::parse(&raw.bytes).unwrap() else { panic!("not an index") };
    assert_eq!(idx.media_type.as_deref(), Some(OCI_INDEX));
    let types: Vec<_> = idx.manifests.iter().map(|m| m.artifact_type.clone().unwrap()).collect();
    assert_eq!(types, ["application/spdx+json", "application/vnd.cyclonedx+json"]);

    // Attaching the same SBOM again adds nothing.
    assert_code(&attach(d, "sbom.spdx.json", "spdxjson", &image), 0);
    let out = sigil(d, &["tree", "--allow-http-registry", "-o", "json", &image]);
    assert_code(&out, 0);
    let t: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(t["referrers"].as_array().unwrap().len(), 2, "{t}");
    let text = stdout(&sigil(d, &["tree", "--allow-http-registry", &image]));
    assert!(text.contains("application/vnd.cyclonedx+json"), "{text}");

    let out = sigil(d, &["download", "sbom", "--allow-http-registry", &image]);
    assert_code(&out, 0);
    assert_eq!(stdout(&out), format!("{SPDX}\n{CDX}\n"));
    // Size-capped.
    let out = sigil(d, &["download", "sbom", "--allow-http-registry", "--max-blob-size", "100", &image]);
    assert_code(&out, 1);
    assert!(stderr(&out).contains("--max-blob-size"), "{}", stderr(&out));
    assert!(stdout(&out).is_empty());

    // Refused before anything is pushed: not JSON, or not the format named.
    std::fs::write(d.join("tv.spdx"), "SPDXVersion: SPDX-2.3\n").unwrap();
    let out = attach(d, "tv.spdx", "spdxjson", &image);
    assert_code(&out, 1);
    assert!(stderr(&out).contains("not a JSON document"), "{}", stderr(&out));
    let out = attach(d, "sbom.spdx.json", "cyclonedx", &image);
    assert_code(&out, 1);
    assert!(stderr(&out).contains("bomFormat"), "{}", stderr(&out));
    let out = sigil(d, &["tree", "--allow-http-registry", "-o", "json", &image]);
    let t: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(t["referrers"].as_array().unwrap().len(), 2);

    // No SBOM: exit 10, nothing on stdout.
    rt().block_on(push_image(&store, Some("bare"), "bare", "amd64"));
    let out = sigil(d, &["download", "sbom", "--allow-http-registry", &format!("{}/sbom/app:bare", reg.host())]);
    assert_code(&out, 10);
    assert!(stdout(&out).is_empty());
}

/// Eight processes attach eight SBOMs to one image at once: the tag-schema index must list
/// all eight (each writer re-reads after writing and merges again when it was overwritten).
#[test]
fn concurrent_sbom_writers_lose_nothing() {
    let reg = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let store = reg.store("sbom/busy");
    let digest = rt().block_on(push_image(&store, Some("v1"), "busy", "amd64"));
    let image = format!("{}/sbom/busy@{digest}", reg.host());
    let children: Vec<_> = (0..8)
        .map(|i| {
            let f = d.join(format!("s{i}.json"));
            std::fs::write(&f, SPDX.replace("\"app\"", &format!("\"app{i}\""))).unwrap();
            std::process::Command::new(sigil_bin())
                .args(["attach", "sbom", "--allow-http-registry", "--sbom"])
                .arg(&f)
                .arg(&image)
                .env("DOCKER_CONFIG", d)
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut rewrites = 0;
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert_code(&out, 0);
        let v: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
        rewrites += v["attached"]["indexing"]["tag-schema"]["writes"].as_u64().unwrap() - 1;
    }
    let out = sigil(d, &["download", "sbom", "--allow-http-registry", &image]);
    assert_code(&out, 0);
    for i in 0..8 {
        assert!(stdout(&out).contains(&format!("\"app{i}\"")), "SBOM {i} lost (rewrites: {rewrites})");
    }
    eprintln!("index rewrites caused by concurrent writers: {rewrites}");
}

/// A multi-megabyte SBOM goes up in chunks (streamed), on a registry and into a layout, and
/// comes back byte for byte; the layout's referrers index does not count as an image.
#[test]
fn large_sbom_streams_to_registry_and_layout() {
    let reg = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut big = String::from(r#"{"spdxVersion":"SPDX-2.3","packages":["#);
    for i in 0..120_000 {
        big.push_str(&format!(r#"{{"name":"pkg{i}","versionInfo":"1.0.{i}"}},"#));
    }
    big.push_str(r#"{"name":"last"}]}"#);
    assert!(big.len() > 5 << 20);
    std::fs::write(d.join("big.json"), &big).unwrap();
    let store = reg.store("sbom/big");
    rt().block_on(push_image(&store, Some("v1"), "big", "amd64"));
    let image = format!("{}/sbom/big:v1", reg.host());
    assert_code(&attach(d, "big.json", "spdxjson", &image), 0);
    let out = sigil(d, &["download", "sbom", "--allow-http-registry", &image]);
    assert_code(&out, 0);
    assert!(stdout(&out) == format!("{big}\n"), "downloaded SBOM differs");

    layout_with_image(&d.join("lay"), "v1", "lay");
    assert_code(&sigil(d, &["attach", "sbom", "--sbom", "big.json", "oci:lay:v1"]), 0);
    let out = sigil(d, &["download", "sbom", "oci:lay:v1"]);
    assert_code(&out, 0);
    assert!(stdout(&out) == format!("{big}\n"), "downloaded SBOM differs");
    // Still one image in the layout: `oci:lay` (no tag) resolves to it.
    assert_code(&sigil(d, &["generate-key-pair"]), 0);
    assert_code(&sigil(d, &["sign", "--key", "sigil.key", "oci:lay"]), 0);
}

/// Whatever is at the referrers tag and is not an index is left alone: attach refuses.
#[test]
fn a_foreign_referrers_tag_is_not_overwritten() {
    let reg = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let store = reg.store("sbom/odd");
    let digest = rt().block_on(push_image(&store, Some("v1"), "odd", "amd64"));
    // An image manifest squatting on the tag-schema tag.
    let squatter = rt().block_on(push_image(&store, Some(&digest.tag_stem()), "squat", "amd64"));
    std::fs::write(d.join("s.json"), SPDX).unwrap();
    let out = attach(d, "s.json", "spdxjson", &format!("{}/sbom/odd:v1", reg.host()));
    assert_code(&out, 1);
    assert!(stderr(&out).contains("referrers index"), "{}", stderr(&out));
    let raw = rt().block_on(store.get_manifest(&ManifestRef::Tag(digest.tag_stem()))).unwrap().unwrap();
    assert_eq!(raw.digest, squatter);
}

/// SBOMs attached by cosign 2.5 — as an OCI 1.1 referrer (`--registry-referrers-mode
/// oci-1-1`, artifact type `application/vnd.dev.cosign.artifact.sbom.v1+json`) and the legacy
/// `.sbom` tag — are found and printed by `sigil download sbom`.
#[test]
fn sboms_attached_by_cosign_are_read() {
    let reg = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("s.json"), SPDX).unwrap();
    std::fs::write(d.join("c.json"), CDX).unwrap();
    let store = reg.store("sbom/cosign");
    rt().block_on(push_image(&store, Some("oci11"), "oci11", "amd64"));
    rt().block_on(push_image(&store, Some("legacy"), "legacy", "amd64"));
    let oci11 = format!("{}/sbom/cosign:oci11", reg.host());
    let legacy = format!("{}/sbom/cosign:legacy", reg.host());
    let out = cosign_env(
        d,
        &[
            "attach",
            "sbom",
            "--allow-http-registry",
            "--registry-referrers-mode=oci-1-1",
            "--type",
            "spdx",
            "--input-format",
            "json",
            "--sbom",
            "s.json",
            &oci11,
        ],
        &[("COSIGN_EXPERIMENTAL", "1")],
    );
    assert_code(&out, 0);
    let out =
        cosign(d, &["attach", "sbom", "--allow-http-registry", "--type", "cyclonedx", "--sbom", "c.json", &legacy]);
    assert_code(&out, 0);

    let out = sigil(d, &["download", "sbom", "--allow-http-registry", &oci11]);
    assert_code(&out, 0);
    assert_eq!(stdout(&out), format!("{SPDX}\n"));
    assert!(stderr(&out).contains("text/spdx+json"), "{}", stderr(&out));
    let out = sigil(d, &["download", "sbom", "--allow-http-registry", &legacy]);
    assert_code(&out, 0);
    assert_eq!(stdout(&out), format!("{CDX}\n"));
    let t: Value =
        serde_json::from_str(stdout(&sigil(d, &["tree", "--allow-http-registry", "-o", "json", &oci11])).trim())
            .unwrap();
    assert_eq!(t["referrers"][0]["artifactType"], "application/vnd.dev.cosign.artifact.sbom.v1+json");
    // The auditor's view: listed, summarised, and marked unverified.
    assert_code(&sigil(d, &["generate-key-pair"]), 0);
    let out = sigil(
        d,
        &["inspect", "--allow-http-registry", "--key", "sigil.pub", "--include-unverified", "-o", "json", &oci11],
    );
    assert_code(&out, 0);
    let v: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(v["report"]["sboms"][0]["verified"], false);
    assert_eq!(v["report"]["sboms"][0]["summary"]["packages"], 2);
}

/// On a terminal, `attach sbom` shows upload progress (stderr, one line rewritten); piped,
/// it shows none. The terminal is a pseudo-terminal from util-linux `script`.
#[test]
fn sbom_upload_progress_on_a_terminal_only() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    layout_with_image(&d.join("lay"), "v1", "progress");
    let mut doc = String::from(r#"{"spdxVersion":"SPDX-2.3","pad":""#);
    doc.push_str(&"x".repeat(3 << 20));
    doc.push_str(r#""}"#);
    std::fs::write(d.join("p.json"), &doc).unwrap();
    let cmd = format!("{} attach sbom --sbom p.json oci:lay:v1", sigil_bin().display());
    let out = std::process::Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .current_dir(d)
        .env("DOCKER_CONFIG", d)
        .output()
        .expect("util-linux script");
    assert_code(&out, 0);
    let tty = String::from_utf8_lossy(&out.stdout);
    assert!(tty.contains("uploading p.json: 100% (3 of 3 MiB)"), "{tty}");
    assert!(tty.contains("uploading p.json:  33%"), "{tty}");
    // Piped: no progress lines.
    std::fs::write(d.join("q.json"), doc.replace("SPDX-2.3", "SPDX-2.2")).unwrap();
    let out = sigil(d, &["attach", "sbom", "--sbom", "q.json", "oci:lay:v1"]);
    assert_code(&out, 0);
    assert!(!stderr(&out).contains("uploading"), "{}", stderr(&out));
}

/// A referrers index already at 1000 entries (the most sigil and cosign read) is not grown
/// into one nobody can read: attach refuses and the index is unchanged. (In a layout: a
/// registry checks that index entries exist, and 1000 artifacts would be slow to push.)
#[test]
fn a_full_referrers_index_is_not_made_unreadable() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let digest = layout_with_image(&d.join("lay"), "v1", "full");
    let store = sigil::oci::layout::LayoutStore::open(&d.join("lay")).unwrap();
    let entries: Vec<_> = (0..1000)
        .map(|i| sigil::oci::manifest::Descriptor {
            artifact_type: Some("application/spdx+json".into()),
            ..sigil::oci::manifest::Descriptor::of(OCI_MANIFEST, format!("artifact {i}").as_bytes())
        })
        .collect();
    let index =
        serde_json::to_vec(&serde_json::json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}))
            .unwrap();
    let before = rt().block_on(store.put_manifest(&ManifestRef::Tag(digest.tag_stem()), OCI_INDEX, index)).unwrap();
    std::fs::write(d.join("s.json"), SPDX).unwrap();
    let out = sigil(d, &["attach", "sbom", "--sbom", "s.json", "oci:lay:v1"]);
    assert_code(&out, 1);
    assert!(stderr(&out).contains("already holds 1000 entries"), "{}", stderr(&out));
    let raw = rt().block_on(store.get_manifest(&ManifestRef::Tag(digest.tag_stem()))).unwrap().unwrap();
    assert_eq!(raw.digest, before);
}
