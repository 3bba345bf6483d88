//! CLI flows against a real registry (Debian's docker-registry on a random loopback port).

mod common;

use common::*;
use serde_json::Value;
use sigil::oci::{ManifestRef, Store};

fn keys(d: &std::path::Path) {
    assert_code(&sigil(d, &["generate-key-pair"]), 0);
}

#[test]
fn sign_verify_tree_on_registry() {
    let reg = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    keys(d);
    let store = reg.store("app/one");
    let digest = rt().block_on(push_image(&store, Some("v1"), "one", "amd64"));
    let image = format!("{}/app/one:v1", reg.host());
    let out = sigil(d, &["sign", "--allow-http-registry", "--key", "sigil.key", &image]);
    assert_code(&out, 0);
    let signed: Value = serde_json::from_str(stdout(&out).lines().next().unwrap()).unwrap();
    assert_eq!(signed["digest"], digest.to_string());

    // docker-reference is repo:tag, so containers/image's matchRepoDigestOrExact accepts it.
    let sig =
        rt().block_on(store.get_manifest(&ManifestRef::Tag(format!("{}.sig", digest.tag_stem())))).unwrap().unwrap();
    let m: Value = serde_json::from_slice(&sig.bytes).unwrap();
    let layer = m["layers"][0]["digest"].as_str().unwrap();
    let payload = rt().block_on(store.get_blob(&sigil::digest::Digest::parse(layer).unwrap(), 1 << 20)).unwrap();
    let p: Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(p["critical"]["identity"]["docker-reference"], image);
    assert_eq!(m["mediaType"], "application/vnd.oci.image.manifest.v1+json");
    assert_eq!(m["config"]["mediaType"], "application/vnd.oci.image.config.v1+json");

    let out = sigil(d, &["verify", "--allow-http-registry", "--key", "sigil.pub", &image]);
    assert_code(&out, 0);
    let by_digest = format!("{}/app/one@{digest}", reg.host());
    assert_code(&sigil(d, &["verify", "--allow-http-registry", "--key", "sigil.pub", &by_digest]), 0);
    let out = sigil(d, &["tree", "--allow-http-registry", "-o", "json", &image]);
    assert_code(&out, 0);
    let t: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(t["digest"], digest.to_string());
    assert_eq!(t["attachments"][0]["layers"][0]["mediaType"], "application/vnd.dev.cosign.simplesigning.v1+json");
}

#[test]
fn many_images_recursive_and_signature_repository() {
    let reg = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    keys(d);
    let mut images = Vec::new();
    for i in 0..5 {
        let repo = format!("many/img{i}");
        rt().block_on(push_image(&reg.store(&repo), Some("latest"), &format!("m{i}"), "amd64"));
        images.push(format!("{}/{repo}", reg.host()));
    }
    let mut args = vec!["sign", "--allow-http-registry", "--key", "sigil.key"];
    args.extend(images.iter().map(String::as_str));
    assert_code(&sigil(d, &args), 0);
    let mut args = vec!["verify", "--allow-http-registry", "--key", "sigil.pub"];
    args.extend(images.iter().map(String::as_str));
    let out = sigil(d, &args);
    assert_code(&out, 0);
    assert_eq!(stdout(&out).lines().count(), 5);

    // Two tags of one image in one call: both signatures are kept (no lost update).
    let store = reg.store("twotags/app");
    let digest = rt().block_on(push_image(&store, Some("v1"), "twotags", "amd64"));
    rt().block_on(async {
        let raw = store.get_manifest(&ManifestRef::Digest(digest.clone())).await.unwrap().unwrap();
        store
            .put_manifest(&ManifestRef::Tag("latest".into()), sigil::oci::manifest::OCI_MANIFEST, raw.bytes)
            .await
            .unwrap();
    });
    let (t1, t2) = (format!("{}/twotags/app:v1", reg.host()), format!("{}/twotags/app:latest", reg.host()));
    assert_code(&sigil(d, &["sign", "--allow-http-registry", "--key", "sigil.key", &t1, &t2]), 0);
    let out = sigil(d, &["tree", "--allow-http-registry", "-o", "json", &t1]);
    let t: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(t["attachments"][0]["layers"].as_array().unwrap().len(), 2, "both signatures kept");

    // Index, recursive: index and both children get signatures.
    let (idx, children) = rt().block_on(push_index(&reg.store("multi/arch"), "v1", "idx"));
    let image = format!("{}/multi/arch:v1", reg.host());
    let out = sigil(d, &["sign", "--allow-http-registry", "--recursive", "--key", "sigil.key", &image]);
    assert_code(&out, 0);
    assert_eq!(stdout(&out).lines().count(), 3);
    for c in children.iter().chain(std::iter::once(&idx)) {
        let r = format!("{}/multi/arch@{c}", reg.host());
        assert_code(&sigil(d, &["verify", "--allow-http-registry", "--key", "sigil.pub", &r]), 0);
    }

    // Signatures elsewhere.
    rt().block_on(push_image(&reg.store("elsewhere/app"), Some("v1"), "else", "amd64"));
    let image = format!("{}/elsewhere/app:v1", reg.host());
    let sigrepo = format!("{}/elsewhere/sigs", reg.host());
    assert_code(
        &sigil(d, &["sign", "--allow-http-registry", "--signature-repository", &sigrepo, "--key", "sigil.key", &image]),
        0,
    );
    assert_code(&sigil(d, &["verify", "--allow-http-registry", "--key", "sigil.pub", &image]), 10);
    assert_code(
        &sigil_env(
            d,
            &["verify", "--allow-http-registry", "--key", "sigil.pub", &image],
            &[("SIGIL_REPOSITORY", &sigrepo)],
        ),
        0,
    );
}

#[test]
fn unreachable_missing_and_oversized() {
    let reg = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    keys(d);
    // Nothing listens on this port once the probe listener is dropped.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let gone = format!("127.0.0.1:{port}/x/y:v1");
    let out = sigil(d, &["verify", "--allow-http-registry", "--timeout", "5", "--key", "sigil.pub", &gone]);
    assert_code(&out, 14);
    assert!(stderr(&out).contains("could not check"), "{}", stderr(&out));
    let out = sigil(d, &["sign", "--allow-http-registry", "--timeout", "5", "--key", "sigil.key", &gone]);
    assert_code(&out, 1);
    assert!(stderr(&out).contains("hint:"), "{}", stderr(&out));

    // Missing image.
    let missing = format!("{}/x/missing:v1", reg.host());
    assert_code(&sigil(d, &["sign", "--allow-http-registry", "--key", "sigil.key", &missing]), 11);
    assert_code(&sigil(d, &["verify", "--allow-http-registry", "--key", "sigil.pub", &missing]), 11);

    // HTTPS required by default: a plain-HTTP registry is refused without the flag.
    let store = reg.store("x/app");
    let digest = rt().block_on(push_image(&store, Some("v1"), "x", "amd64"));
    let image = format!("{}/x/app:v1", reg.host());
    let out = sigil(d, &["verify", "--timeout", "5", "--key", "sigil.pub", &image]);
    assert_code(&out, 14);

    // A signature manifest with more than 1000 layers is refused, clearly.
    let layer = sigil::oci::manifest::Descriptor::of(sigil::attachments::SIMPLE_SIGNING, b"{}");
    let (big, config) = sigil::attachments::signature_manifest(vec![layer; 1001]);
    rt().block_on(async {
        store.put_blob(b"{}".to_vec()).await.unwrap();
        store.put_blob(config).await.unwrap();
        store
            .put_manifest(
                &ManifestRef::Tag(format!("{}.sig", digest.tag_stem())),
                sigil::oci::manifest::OCI_MANIFEST,
                big,
            )
            .await
            .unwrap();
    });
    let out = sigil(d, &["verify", "--allow-http-registry", "--key", "sigil.pub", &image]);
    assert_code(&out, 14);
    assert!(stderr(&out).contains("over the limit of 1000"), "{}", stderr(&out));
    // Signing refuses to rewrite a signature manifest it cannot read, and loses nothing.
    let out = sigil(d, &["sign", "--allow-http-registry", "--key", "sigil.key", &image]);
    assert_code(&out, 1);
    assert!(stderr(&out).contains("nothing was written"), "{}", stderr(&out));
}

#[test]
fn verification_request_count() {
    // Fewer requests than cosign's 4 for a tagged image with one signature: the tag's
    // manifest and the signature manifest. The payload is rebuilt locally from the likely
    // claims and matched against the layer digest; the blob is fetched only when that fails.
    // Reading both formats (the default) adds the referrers API and the tag-schema index
    // (both 404 on this registry), read at the same time as the `.sig` tag.
    // see: issue 9
    let reg = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    keys(d);
    rt().block_on(push_image(&reg.store("count/app"), Some("v1"), "count", "amd64"));
    let image = format!("{}/count/app:v1", reg.host());
    assert_code(&sigil(d, &["sign", "--allow-http-registry", "--key", "sigil.key", &image]), 0);
    std::thread::sleep(std::time::Duration::from_millis(200));
    let before = reg.request_count();
    assert_code(&sigil(d, &["verify", "--allow-http-registry", "--format", "legacy", "--key", "sigil.pub", &image]), 0);
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_eq!(reg.request_count() - before, 2, "requests for one verification of the legacy format");
    let before = reg.request_count();
    assert_code(&sigil(d, &["verify", "--allow-http-registry", "--key", "sigil.pub", &image]), 0);
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_eq!(reg.request_count() - before, 4, "requests for one verification of both formats");
    // A payload with annotations the verifier does not ask for cannot be rebuilt: fetched.
    assert_code(&sigil(d, &["sign", "--allow-http-registry", "--key", "sigil.key", "-a", "extra=1", &image]), 0);
    std::thread::sleep(std::time::Duration::from_millis(200));
    let before = reg.request_count();
    assert_code(&sigil(d, &["verify", "--allow-http-registry", "--format", "legacy", "--key", "sigil.pub", &image]), 0);
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_eq!(reg.request_count() - before, 3, "requests when one payload must be fetched");
}

#[test]
fn tls_registry_trusts_system_roots_plus_cacert() {
    let (reg, ca) = Registry::start_tls();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    keys(d);
    let opts =
        sigil::oci::registry::RegistryOptions { extra_ca_pem: vec![std::fs::read(&ca).unwrap()], ..Default::default() };
    rt().block_on(push_image(&reg.store_with("tls/app", opts), Some("v1"), "tls", "amd64"));
    let image = format!("{}/tls/app:v1", reg.host());
    let ca = ca.to_str().unwrap();
    assert_code(&sigil(d, &["sign", "--registry-cacert", ca, "--key", "sigil.key", &image]), 0);
    let out = sigil(d, &["verify", "--registry-cacert", ca, "--key", "sigil.pub", &image]);
    assert_code(&out, 0);
    assert!(!stderr(&out).contains("--allow-http-registry"), "no plain-HTTP warning over TLS");
    // The test CA is not a system root: without --registry-cacert the certificate is refused.
    let out = sigil(d, &["verify", "--timeout", "5", "--key", "sigil.pub", &image]);
    assert_code(&out, 14);
    assert!(stderr(&out).to_lowercase().contains("certificate"), "{}", stderr(&out));
    // A --registry-cacert that is not PEM is a clear error.
    std::fs::write(d.join("bad.pem"), "nope").unwrap();
    let out = sigil(d, &["verify", "--registry-cacert", "bad.pem", "--key", "sigil.pub", &image]);
    assert_ne!(code(&out), 0);
    assert!(stderr(&out).contains("--registry-cacert"), "{}", stderr(&out));
}

/// `sign --format bundle` on both registry kinds: a single image, an index with `--recursive`
/// (each child its own referrer), and `--signature-repository` (the referrers live in the
/// other repository; the subject is the image in its own). On refreg the referrers API lists
/// them and no tag-schema index is written; on docker-registry the tag schema does.
// see: issue 9
#[test]
fn bundle_signatures_recursive_and_in_another_repository_on_both_registry_kinds() {
    for kind in RegistryKind::ALL {
        let reg = Registry::start_kind(kind);
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        keys(d);
        let store = reg.store("bundle/multi");
        let (index, children) = rt().block_on(push_index(&store, "v1", "bundle-multi"));
        let image = format!("{}/bundle/multi:v1", reg.host());
        let out = sigil(
            d,
            &["sign", "--format", "bundle", "--allow-http-registry", "--recursive", "--key", "sigil.key", &image],
        );
        assert_code(&out, 0);
        let lines: Vec<Value> = stdout(&out).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 3, "{kind:?}");
        assert!(lines.iter().all(|l| l["format"] == "bundle"));
        let tag_schema = rt().block_on(store.get_manifest(&ManifestRef::Tag(index.tag_stem()))).unwrap();
        match kind {
            RegistryKind::Referrers => {
                assert!(tag_schema.is_none(), "no tag-schema index where the API exists");
                assert!(lines.iter().all(|l| l["signature"].as_str().unwrap().ends_with("(referrers API)")));
            }
            RegistryKind::Distribution => assert!(tag_schema.is_some(), "the tag schema lists the referrer"),
        }
        for d_ in std::iter::once(&index).chain(&children) {
            let by_digest = format!("{}/bundle/multi@{d_}", reg.host());
            let out =
                sigil(d, &["verify", "--format", "bundle", "--allow-http-registry", "--key", "sigil.pub", &by_digest]);
            assert_code(&out, 0);
        }
        // Signatures in another repository.
        let sigrepo = format!("{}/bundle/sigs", reg.host());
        let child = format!("{}/bundle/multi@{}", reg.host(), children[0]);
        let sign = ["sign", "--format", "bundle", "--allow-http-registry", "--signature-repository", &sigrepo];
        assert_code(&sigil(d, &[&sign[..], &["--key", "sigil.key", &child]].concat()), 0);
        let verify = ["verify", "--format", "bundle", "--allow-http-registry", "--key", "sigil.pub"];
        assert_code(&sigil(d, &[&verify[..], &["--signature-repository", &sigrepo, &child]].concat()), 0);
        // Without --signature-repository only the first (recursive) signature is there.
        let out = sigil(d, &[&verify[..], &[&child[..]]].concat());
        assert_code(&out, 0);
    }
}
