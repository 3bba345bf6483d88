//! `sigil copy`: an image and everything attached to it (cosign 2's `.sig`/`.att`/`.sbom`
//! tags, Sigstore bundle referrers written by sigil and cosign 3.1.1, an SBOM artifact)
//! between two docker-registry instances (tag-schema referrers), an OCI layout (the air-gap
//! format) and refreg (the OCI 1.1 referrers API). At each destination sigil, cosign 2.5 and
//! cosign 3.1.1 verify exactly what they verify at the source.

mod common;

use std::path::Path;

use common::*;
use serde_json::Value;
use sigil::digest::Digest;

const HTTP: &str = "--allow-http-registry";

fn cosign3_common(file: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/cosign3/common").join(file).display().to_string()
}

const SLSA: &str = r#"{"buildDefinition":{"buildType":"https://example.com/build/v1","externalParameters":{},"resolvedDependencies":[]},"runDetails":{"builder":{"id":"https://ci.example.com/builder"},"metadata":{}}}"#;
const SPDX: &str = r#"{"spdxVersion":"SPDX-2.3","dataLicense":"CC0-1.0","SPDXID":"SPDXRef-DOCUMENT","name":"app","documentNamespace":"https://example.com/spdx/app-1","creationInfo":{"created":"2025-01-01T00:00:00Z","creators":["Tool: sigil-tests"]},"packages":[{"name":"app","SPDXID":"SPDXRef-Package-app","versionInfo":"1.0.0","downloadLocation":"NOASSERTION"}]}"#;

/// Keys `s` and `other`, the predicates, in a temporary folder.
fn workspace() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for prefix in ["s", "other"] {
        assert_code(&sigil(dir.path(), &["generate-key-pair", "--output-key-prefix", prefix]), 0);
    }
    std::fs::write(dir.path().join("slsa.json"), SLSA).unwrap();
    std::fs::write(dir.path().join("spdx.json"), SPDX).unwrap();
    dir
}

/// Signs and attests `image` every way the tools store things: sigil legacy `.sig` and
/// `.att`, cosign 2.5 `.sig` (merged into sigil's), sigil bundle signature and attestation,
/// a cosign 3.1.1 bundle signature, an unsigned SBOM artifact.
fn attach_everything(d: &Path, image: &str) {
    assert_code(&sigil(d, &["sign", HTTP, "--format", "legacy", "--key", "s.key", image]), 0);
    assert_code(&cosign(d, &["sign", "--key", "other.key", "--tlog-upload=false", "--yes", HTTP, image]), 0);
    let att = ["attest", HTTP, "--key", "s.key", "--type", "slsaprovenance1", "--predicate", "slsa.json"];
    assert_code(&sigil(d, &[&att[..], &["--format", "legacy", image]].concat()), 0);
    assert_code(&sigil(d, &["sign", HTTP, "--format", "bundle", "--key", "s.key", image]), 0);
    let att = ["attest", HTTP, "--key", "s.key", "--type", "spdxjson", "--predicate", "spdx.json"];
    assert_code(&sigil(d, &[&att[..], &["--format", "bundle", image]].concat()), 0);
    let (sc, root) = (cosign3_common("signing-config.json"), cosign3_common("trusted-root.json"));
    let c3 = ["sign", "--key", "other.key", "--signing-config", &sc, "--trusted-root", &root, HTTP, "--yes", image];
    assert_code(&cosign3(d, &c3), 0);
    assert_code(&sigil(d, &["attach", "sbom", HTTP, "--sbom", "spdx.json", image]), 0);
}

/// What each tool verifies of `image`: (check, exit code). `registry` runs cosign too (it
/// reads registries only).
fn verifications(d: &Path, image: &str, registry: bool) -> Vec<(String, i32)> {
    let mut out = Vec::new();
    let mut run = |name: &str, o: std::process::Output| out.push((name.to_owned(), code(&o)));
    for (key, format) in [("s.pub", "legacy"), ("s.pub", "bundle"), ("other.pub", "legacy"), ("other.pub", "bundle")] {
        run(
            &format!("sigil verify {key} {format}"),
            sigil(d, &["verify", HTTP, "--key", key, "--format", format, image]),
        );
    }
    for (t, format) in [("slsaprovenance1", "legacy"), ("spdxjson", "bundle")] {
        run(
            &format!("sigil verify-attestation {t}"),
            sigil(d, &["verify-attestation", HTTP, "--key", "s.pub", "--type", t, "--format", format, image]),
        );
    }
    let sboms = sigil(d, &["download", "sbom", HTTP, image]);
    out.push(("sigil download sbom (count)".into(), stdout(&sboms).lines().count() as i32));
    if registry {
        let mut run = |name: &str, o: std::process::Output| out.push((name.to_owned(), code(&o)));
        for key in ["s.pub", "other.pub"] {
            run(
                &format!("cosign2 verify {key}"),
                cosign(d, &["verify", "--key", key, "--insecure-ignore-tlog=true", HTTP, image]),
            );
        }
        run("cosign2 verify-attestation", cosign2_verify_slsa(d, &[image]));
        let root = cosign3_common("trusted-root.json");
        run(
            "cosign3 verify other.pub",
            cosign3(
                d,
                &["verify", "--key", "other.pub", "--trusted-root", &root, "--insecure-ignore-tlog", HTTP, image],
            ),
        );
        run(
            "cosign3 verify-attestation spdxjson",
            cosign3(
                d,
                &[
                    "verify-attestation",
                    "--key",
                    "s.pub",
                    "--type",
                    "spdxjson",
                    "--trusted-root",
                    &root,
                    "--insecure-ignore-tlog",
                    HTTP,
                    image,
                ],
            ),
        );
    }
    out
}

/// cosign 2.5 verifies the SLSA attestation `s.key` made of `image` (a reference, or
/// `--local-image DIR`).
fn cosign2_verify_slsa(d: &Path, image: &[&str]) -> std::process::Output {
    let args =
        ["verify-attestation", "--key", "s.pub", "--type", "slsaprovenance1", "--insecure-ignore-tlog=true", HTTP];
    cosign(d, &[&args[..], image].concat())
}

/// `sigil tree -o json`: the attachment manifests and the referrers, as digests.
fn tree(d: &Path, image: &str) -> (Vec<String>, Vec<String>) {
    let out = sigil(d, &["tree", HTTP, "-o", "json", image]);
    assert_code(&out, 0);
    let v: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    let mut attachments: Vec<String> = v["attachments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            // The tag without the repository: `sha256-<hex>.sig`.
            let tag = a["tag"].as_str().unwrap().rsplit(':').next().unwrap().to_owned();
            format!("{tag} {}", a["manifest"])
        })
        .collect();
    let mut referrers: Vec<String> =
        v["referrers"].as_array().unwrap().iter().map(|r| r["digest"].as_str().unwrap().to_owned()).collect();
    attachments.sort();
    referrers.sort();
    (attachments, referrers)
}

fn copy(d: &Path, args: &[&str]) -> Value {
    let out = sigil(d, &[&["copy", HTTP][..], args].concat());
    assert_code(&out, 0);
    serde_json::from_str(stdout(&out).trim()).unwrap()
}

#[test]
fn copy_between_registries_and_through_a_layout_verifies_as_at_the_source() {
    let ws = workspace();
    let d = ws.path();
    let (a, b) = (Registry::start(), Registry::start());
    let c = Registry::start_kind(RegistryKind::Referrers);
    let digest = rt().block_on(push_image(&a.store("app"), Some("v1"), "copy", "amd64"));
    let src = format!("{}/app:v1", a.host());
    attach_everything(d, &src);
    let at_source = verifications(d, &src, true);
    for (check, code) in &at_source {
        let want = if check.ends_with("(count)") { 1 } else { 0 };
        assert_eq!(*code, want, "at the source: {check}");
    }
    let source_tree = tree(d, &src);
    assert_eq!(source_tree.0.len(), 2, "{source_tree:?}");
    assert_eq!(source_tree.1.len(), 4, "{source_tree:?}");

    // Registry to registry: the destination tag defaults to the source's.
    let report = copy(d, &[&src, &format!("{}/promoted", b.host())]);
    assert_eq!(report["digest"], digest.to_string());
    assert_eq!(report["tag"], "v1");
    let dst = format!("{}/promoted:v1", b.host());
    assert_eq!(verifications(d, &dst, true), at_source);
    assert_eq!(tree(d, &dst), source_tree);

    // Again: every blob is there already, none is sent.
    let mark = b.mark();
    let again = copy(d, &[&src, &dst]);
    assert_eq!(again["blobs"]["copied"], 0, "{again}");
    let uploads: Vec<String> = b.requests_since(mark).into_iter().filter(|r| r.contains("/blobs/uploads")).collect();
    assert!(uploads.is_empty(), "{uploads:?}");
    assert!(again["attachments"].as_array().unwrap().iter().all(|a| a["outcome"] == "present"), "{again}");

    // The air gap: registry to a layout, the layout to a registry with the referrers API.
    copy(d, &[&src, "oci:air"]);
    let layout = "oci:air:v1";
    let in_layout = verifications(d, layout, false);
    assert_eq!(in_layout, at_source[..in_layout.len()].to_vec());
    assert_eq!(tree(d, layout), source_tree);
    let report = copy(d, &[layout, &format!("{}/landed:v1", c.host())]);
    assert_eq!(report["digest"], digest.to_string());
    let landed = format!("{}/landed:v1", c.host());
    // refreg lists every referrer's artifactType as its config's media type (its README), so
    // `download sbom`, which goes by the listed type, finds no SBOM there: the SBOM artifact
    // is compared through `tree` instead.
    let sbom_count = |v: &[(String, i32)]| -> Vec<(String, i32)> {
        v.iter().filter(|(check, _)| !check.ends_with("(count)")).cloned().collect()
    };
    assert_eq!(sbom_count(&verifications(d, &landed, true)), sbom_count(&at_source));
    assert_eq!(tree(d, &landed), source_tree);
    // Listed by refreg's referrers API, not by a tag-schema index.
    let store = c.store("landed");
    let tagged = rt().block_on(sigil::oci::Store::get_manifest(
        &store,
        &sigil::oci::ManifestRef::Tag(sigil::oci::manifest::referrers_tag(&digest)),
    ));
    assert!(tagged.unwrap().is_none());
}

#[test]
fn copy_merges_into_signatures_already_at_the_destination() {
    // see: issue 12
    let ws = workspace();
    let d = ws.path();
    let (a, b) = (Registry::start(), Registry::start());
    let store_a = a.store("app");
    let store_b = b.store("app");
    let digest = rt().block_on(push_image(&store_a, Some("v1"), "merge", "amd64"));
    assert_eq!(rt().block_on(push_image(&store_b, Some("v1"), "merge", "amd64")), digest);
    let (src, dst) = (format!("{}/app:v1", a.host()), format!("{}/app:v1", b.host()));
    for (image, key) in [(&src, "s.key"), (&dst, "other.key")] {
        assert_code(&sigil(d, &["sign", HTTP, "--format", "legacy", "--key", key, image]), 0);
        assert_code(&sigil(d, &["sign", HTTP, "--format", "bundle", "--key", key, image]), 0);
    }
    let report = copy(d, &[&src, &dst]);
    let outcomes: Vec<&str> =
        report["attachments"].as_array().unwrap().iter().map(|a| a["outcome"].as_str().unwrap()).collect();
    assert_eq!(outcomes, ["merged", "merged"], "{report}");
    for key in ["s.pub", "other.pub"] {
        for format in ["legacy", "bundle"] {
            let out = sigil(d, &["verify", HTTP, "--key", key, "--format", format, &dst]);
            assert_code(&out, 0);
        }
        let out = cosign(d, &["verify", "--key", key, "--insecure-ignore-tlog=true", HTTP, &dst]);
        assert_code(&out, 0);
    }
}

#[test]
fn copy_refuses_a_destination_tag_naming_another_image_unless_forced() {
    // see: issue 12
    let ws = workspace();
    let d = ws.path();
    let (a, b) = (Registry::start(), Registry::start());
    let digest = rt().block_on(push_image(&a.store("app"), Some("v1"), "one", "amd64"));
    let other = rt().block_on(push_image(&b.store("app"), Some("v1"), "two", "amd64"));
    let (src, dst) = (format!("{}/app:v1", a.host()), format!("{}/app:v1", b.host()));
    let out = sigil(d, &["copy", HTTP, &src, &dst]);
    assert_code(&out, 1);
    assert!(stderr(&out).contains("--force"), "{}", stderr(&out));
    assert!(stderr(&out).contains(&other.to_string()), "{}", stderr(&out));
    let report = copy(d, &["--force", &src, &dst]);
    assert_eq!(report["digest"], digest.to_string());
    // A destination digest must be the image's.
    let wrong = format!("{}/app@{other}", b.host());
    let out = sigil(d, &["copy", HTTP, &src, &wrong]);
    assert_code(&out, 1);
    assert!(stderr(&out).contains("not"), "{}", stderr(&out));
}

#[test]
fn copy_of_an_index_selects_a_platform_and_copies_only_what_is_asked() {
    let ws = workspace();
    let d = ws.path();
    let (a, b) = (Registry::start(), Registry::start());
    let (index, children) = rt().block_on(push_index(&a.store("multi"), "v1", "multi"));
    let src = format!("{}/multi:v1", a.host());
    assert_code(&sigil(d, &["sign", HTTP, "--format", "legacy", "--recursive", "--key", "s.key", &src]), 0);

    // The whole index, its children and each one's signature.
    let report = copy(d, &[&src, &format!("{}/all:v1", b.host())]);
    assert_eq!(report["digest"], index.to_string());
    assert_eq!(report["attachments"].as_array().unwrap().len(), 3, "{report}");
    for child in &children {
        let image = format!("{}/all@{child}", b.host());
        assert_code(&sigil(d, &["verify", HTTP, "--key", "s.pub", &image]), 0);
    }

    // One platform: the arm64 child becomes the image, with its signature only.
    let report = copy(d, &["--platform", "linux/arm64", &src, &format!("{}/arm:v1", b.host())]);
    assert_eq!(report["digest"], children[1].to_string());
    assert_eq!(report["attachments"].as_array().unwrap().len(), 1, "{report}");
    assert_code(&sigil(d, &["verify", HTTP, "--key", "s.pub", &format!("{}/arm:v1", b.host())]), 0);
    let out = sigil(d, &["copy", HTTP, "--platform", "linux/s390x", &src, &format!("{}/none:v1", b.host())]);
    assert_code(&out, 1);
    assert!(stderr(&out).contains("linux/amd64, linux/arm64"), "{}", stderr(&out));

    // Only the signatures: the image and its tag stay where they are.
    let report = copy(d, &["--only", "sig", &src, &format!("{}/sigs", b.host())]);
    assert_eq!(report["tag"], Value::Null);
    // Each signature manifest's config and payload: the index's and each child's.
    assert_eq!(report["blobs"]["copied"], 6, "{report}");
    let store = b.store("sigs");
    let tag = sigil::oci::ManifestRef::Tag("v1".into());
    assert!(rt().block_on(sigil::oci::Store::get_manifest(&store, &tag)).unwrap().is_none());
    let sig = sigil::oci::ManifestRef::Tag(sigil::attachments::legacy_tag(&index, "sig"));
    assert!(rt().block_on(sigil::oci::Store::get_manifest(&store, &sig)).unwrap().is_some());
}

#[test]
fn copy_streams_large_blobs_in_bounded_memory() {
    // see: issue 12
    let ws = workspace();
    let d = ws.path();
    let (a, b) = (Registry::start(), Registry::start());
    let big = 96usize << 20;
    let store = a.store("big");
    let digest = rt().block_on(async {
        use sigil::oci::manifest::{Descriptor, OCI_CONFIG, OCI_MANIFEST};
        use sigil::oci::{ManifestRef, Store};
        // Not compressible into anything clever: a counter pattern.
        let layer: Vec<u8> = (0..big).map(|i| (i as u32).wrapping_mul(2654435761).to_le_bytes()[3]).collect();
        let layer_desc = Descriptor::of("application/vnd.oci.image.layer.v1.tar", &layer);
        store.put_blob(layer).await.unwrap();
        let config = br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#.to_vec();
        let config_desc = Descriptor::of(OCI_CONFIG, &config);
        store.put_blob(config).await.unwrap();
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": config_desc, "layers": [layer_desc]
        }))
        .unwrap();
        store.put_manifest(&ManifestRef::Tag("v1".into()), OCI_MANIFEST, manifest).await.unwrap()
    });
    let src = format!("{}/big:v1", a.host());
    assert_code(&sigil(d, &["sign", HTTP, "--key", "s.key", &src]), 0);
    // The peak resident size of sigil copy, from the kernel's accounting of the child.
    for (from, to) in [(src.clone(), "oci:big".to_owned()), ("oci:big:v1".to_owned(), format!("{}/big:v1", b.host()))] {
        let script = "import resource, subprocess, sys\n\
                      r = subprocess.run(sys.argv[1:], capture_output=True)\n\
                      sys.stderr.buffer.write(r.stderr)\n\
                      print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)";
        let out = std::process::Command::new(python())
            .current_dir(d)
            .args(["-c", script])
            .arg(sigil_bin())
            .args(["copy", HTTP, &from, &to])
            .env("DOCKER_CONFIG", d.join(".docker-none"))
            .output()
            .unwrap();
        let line = stdout(&out);
        let mut it = line.split_whitespace();
        let (rc, kib): (i32, u64) = (it.next().unwrap().parse().unwrap(), it.next().unwrap().parse().unwrap());
        assert_eq!(rc, 0, "{}", stderr(&out));
        assert!(kib < 32 << 10, "sigil copy {from} {to}: peak RSS {kib} KiB for a {} MiB layer", big >> 20);
    }
    let dst = format!("{}/big:v1", b.host());
    assert_code(&sigil(d, &["verify", HTTP, "--key", "s.pub", &dst]), 0);
    let layer = rt().block_on(async {
        let raw = sigil::oci::Store::get_manifest(&b.store("big"), &sigil::oci::ManifestRef::Digest(digest.clone()))
            .await
            .unwrap()
            .unwrap();
        let m: Value = serde_json::from_slice(&raw.bytes).unwrap();
        Digest::parse(m["layers"][0]["digest"].as_str().unwrap()).unwrap()
    });
    let got = rt().block_on(sigil::oci::Store::get_blob(&b.store("big"), &layer, 128 << 20)).unwrap();
    assert_eq!(got.len(), big);
}

#[test]
fn cosign_save_and_load_layouts_travel_both_ways() {
    // see: issue 12
    let ws = workspace();
    let d = ws.path();
    let (a, b) = (Registry::start(), Registry::start());
    rt().block_on(push_image(&a.store("app"), Some("v1"), "saved", "amd64"));
    let src = format!("{}/app:v1", a.host());
    assert_code(&cosign(d, &["sign", "--key", "other.key", "--tlog-upload=false", "--yes", HTTP, &src]), 0);
    let att = ["attest", HTTP, "--key", "s.key", "--type", "slsaprovenance1", "--predicate", "slsa.json"];
    assert_code(&sigil(d, &[&att[..], &["--format", "legacy", &src]].concat()), 0);
    let cosign_verifies = |image: &[&str]| {
        let v =
            cosign(d, &[&["verify", "--key", "other.pub", "--insecure-ignore-tlog=true", HTTP][..], image].concat());
        (code(&v), code(&cosign2_verify_slsa(d, image)))
    };
    let sigil_verifies = |image: &str| {
        let v = sigil(d, &["verify", HTTP, "--key", "other.pub", image]);
        let a = sigil(d, &["verify-attestation", HTTP, "--key", "s.pub", "--type", "slsaprovenance1", image]);
        (code(&v), code(&a))
    };

    // A layout cosign saved: sigil copies it out by cosign's marks.
    assert_code(&cosign(d, &["save", HTTP, "--dir", "saved", &src]), 0);
    let from_save = format!("{}/fromsave:v1", b.host());
    let report = copy(d, &["oci:saved", &from_save]);
    assert_eq!(report["attachments"].as_array().unwrap().len(), 2, "{report}");
    assert_eq!(sigil_verifies(&from_save), (0, 0));
    assert_eq!(cosign_verifies(&[&from_save]), (0, 0));

    // A layout sigil wrote: cosign verifies it in place and loads it.
    copy(d, &[&src, "oci:ours"]);
    assert_eq!(sigil_verifies("oci:ours:v1"), (0, 0));
    assert_eq!(cosign_verifies(&["--local-image", "ours"]), (0, 0));
    let loaded = format!("{}/loaded:v1", b.host());
    assert_code(&cosign(d, &["load", HTTP, "--dir", "ours", &loaded]), 0);
    assert_eq!(sigil_verifies(&loaded), (0, 0));
    // Skopeo's reading is unchanged: the tag still names the image.
    let index: Value = serde_json::from_slice(&std::fs::read(d.join("ours/index.json")).unwrap()).unwrap();
    let kinds: Vec<(&str, &str)> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let a = &m["annotations"];
            (a["org.opencontainers.image.ref.name"].as_str().unwrap(), a["kind"].as_str().unwrap_or("-"))
        })
        .collect();
    assert!(kinds.contains(&("v1", "dev.cosignproject.cosign/image")), "{kinds:?}");
}

#[test]
fn copy_within_one_registry_mounts_blobs_instead_of_sending_them() {
    // see: issue 12
    let ws = workspace();
    let d = ws.path();
    let a = Registry::start();
    rt().block_on(push_image(&a.store("staging/app"), Some("v1"), "mount", "amd64"));
    let src = format!("{}/staging/app:v1", a.host());
    assert_code(&sigil(d, &["sign", HTTP, "--format", "legacy", "--key", "s.key", &src]), 0);
    let mark = a.mark();
    let report = copy(d, &[&src, &format!("{}/prod/app", a.host())]);
    let requests = a.requests_since(mark);
    let sent: Vec<&String> =
        requests.iter().filter(|r| r.starts_with("PUT") && r.contains("/blobs/uploads/")).collect();
    assert!(sent.is_empty(), "{sent:?}");
    assert!(requests.iter().any(|r| r.starts_with("POST /v2/prod/app/blobs/uploads")), "{requests:?}");
    assert_eq!(report["blobs"]["copied"], 0, "{report}");
    assert_eq!(report["blobs"]["present"], 4, "{report}");
    let dst = format!("{}/prod/app:v1", a.host());
    assert_code(&sigil(d, &["verify", HTTP, "--key", "s.pub", &dst]), 0);
    assert_code(&cosign(d, &["verify", "--key", "s.pub", "--insecure-ignore-tlog=true", HTTP, &dst]), 0);
}
