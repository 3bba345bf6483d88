//! Interop with cosign (installed from Debian's next suite by scripts/setup.sh), both ways,
//! on a real local registry. cosign runs offline: no transparency log, no TUF.

mod common;

use base64::Engine as _;
use common::*;
use serde_json::Value;
use sigil::digest::Digest;
use sigil::oci::{ManifestRef, Store};

const HTTP: &str = "--allow-http-registry";

fn cosign_sign(d: &std::path::Path, key: &str, image: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["sign", "--key", key, "--tlog-upload=false", "--yes", HTTP];
    args.extend_from_slice(extra);
    args.push(image);
    cosign(d, &args)
}

fn cosign_verify(d: &std::path::Path, pubkey: &str, image: &str) -> std::process::Output {
    cosign(d, &["verify", "--key", pubkey, "--insecure-ignore-tlog=true", HTTP, image])
}

fn sigil_verify(d: &std::path::Path, pubkey: &str, image: &str) -> std::process::Output {
    sigil(d, &["verify", HTTP, "--key", pubkey, image])
}

#[test]
fn keys_interchange_and_signatures_verify_both_ways() {
    let reg = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_code(&sigil(d, &["generate-key-pair", "--output-key-prefix", "s"]), 0);
    assert_code(&cosign(d, &["generate-key-pair", "--output-key-prefix", "c"]), 0);
    let store = reg.store("interop/app");
    let digest = rt().block_on(push_image(&store, Some("v1"), "interop", "amd64"));
    let image = format!("{}/interop/app@{digest}", reg.host());

    // sigil-generated key -> cosign signs with it; both verify.
    let out = cosign_sign(d, "s.key", &image, &[]);
    assert_code(&out, 0);
    assert_code(&cosign_verify(d, "s.pub", &image), 0);
    assert_code(&sigil_verify(d, "s.pub", &image), 0);

    // cosign-generated key -> sigil signs with it; cosign verifies sigil's signature.
    let out = sigil(d, &["sign", HTTP, "--key", "c.key", &image]);
    assert_code(&out, 0);
    let out = cosign_verify(d, "c.pub", &image);
    assert_code(&out, 0);
    let cosign_json: Value = serde_json::from_str(stdout(&out).trim()).unwrap();
    assert_eq!(cosign_json[0]["critical"]["image"]["docker-manifest-digest"], digest.to_string());
    assert_code(&sigil_verify(d, "c.pub", &image), 0);

    // sigil's public-key of a cosign key equals cosign's.
    let out = sigil(d, &["public-key", "--key", "c.key"]);
    assert_code(&out, 0);
    assert_eq!(stdout(&out), std::fs::read_to_string(d.join("c.pub")).unwrap());

    // Both signatures are kept side by side in the one manifest.
    let sig =
        rt().block_on(store.get_manifest(&ManifestRef::Tag(format!("{}.sig", digest.tag_stem())))).unwrap().unwrap();
    let m: Value = serde_json::from_slice(&sig.bytes).unwrap();
    assert_eq!(m["layers"].as_array().unwrap().len(), 2);
}

#[test]
fn sigil_sign_by_tag_verified_by_cosign_and_payload_is_cosigns_shape() {
    let reg = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_code(&sigil(d, &["generate-key-pair"]), 0);
    let store = reg.store("tagged/app");
    rt().block_on(push_image(&store, Some("v2"), "tagged", "amd64"));
    let image = format!("{}/tagged/app:v2", reg.host());
    assert_code(&sigil(d, &["sign", HTTP, "--key", "sigil.key", "-a", "team=release", &image]), 0);
    assert_code(&cosign_verify(d, "sigil.pub", &image), 0);
    assert_code(
        &cosign(
            d,
            &["verify", "--key", "sigil.pub", "--insecure-ignore-tlog=true", HTTP, "-a", "team=release", &image],
        ),
        0,
    );
    assert_ne!(
        code(&cosign(
            d,
            &["verify", "--key", "sigil.pub", "--insecure-ignore-tlog=true", HTTP, "-a", "team=other", &image]
        )),
        0
    );
}

#[test]
fn multi_arch_index_recursive_both_ways() {
    let reg = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_code(&sigil(d, &["generate-key-pair", "--output-key-prefix", "s"]), 0);
    let (idx, children) = rt().block_on(push_index(&reg.store("multi/a"), "v1", "a"));
    let (idx2, children2) = rt().block_on(push_index(&reg.store("multi/b"), "v1", "b"));

    // sigil --recursive -> cosign verifies index and children.
    assert_code(&sigil(d, &["sign", HTTP, "--recursive", "--key", "s.key", &format!("{}/multi/a:v1", reg.host())]), 0);
    for dg in std::iter::once(&idx).chain(children.iter()) {
        assert_code(&cosign_verify(d, "s.pub", &format!("{}/multi/a@{dg}", reg.host())), 0);
    }
    // cosign --recursive -> sigil verifies index and children.
    let out = cosign_sign(d, "s.key", &format!("{}/multi/b@{idx2}", reg.host()), &["--recursive"]);
    assert_code(&out, 0);
    for dg in std::iter::once(&idx2).chain(children2.iter()) {
        assert_code(&sigil_verify(d, "s.pub", &format!("{}/multi/b@{dg}", reg.host())), 0);
    }
}

#[test]
fn ed25519_keys_both_ways() {
    let reg = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_code(&sigil(d, &["generate-key-pair", "--algorithm", "ed25519", "--output-key-prefix", "ed"]), 0);
    let digest = rt().block_on(push_image(&reg.store("ed/app"), Some("v1"), "ed", "amd64"));
    let image = format!("{}/ed/app@{digest}", reg.host());
    assert_code(&sigil(d, &["sign", HTTP, "--key", "ed.key", &image]), 0);
    assert_code(&cosign_verify(d, "ed.pub", &image), 0);
    let digest2 = rt().block_on(push_image(&reg.store("ed/app"), Some("v2"), "ed2", "amd64"));
    let image2 = format!("{}/ed/app@{digest2}", reg.host());
    let out = cosign_sign(d, "ed.key", &image2, &[]);
    assert_code(&out, 0);
    assert_code(&sigil_verify(d, "ed.pub", &image2), 0);
}

/// Rewrites the signature manifest of `digest` (in `store`) with `f` applied to its layers,
/// pushing any new payload blobs, and stores it under the `.sig` tag of `target`.
fn tamper<S: Store>(
    store: &S,
    digest: &Digest,
    target: &Digest,
    f: impl FnOnce(&mut Vec<sigil::oci::manifest::Descriptor>) -> Option<Vec<u8>>,
) {
    rt().block_on(async {
        let raw = store.get_manifest(&ManifestRef::Tag(format!("{}.sig", digest.tag_stem()))).await.unwrap().unwrap();
        let sigil::oci::manifest::Manifest::Image(m) = sigil::oci::manifest::Manifest::parse(&raw.bytes).unwrap()
        else {
            panic!()
        };
        let mut layers = m.layers;
        if let Some(blob) = f(&mut layers) {
            store.put_blob(blob).await.unwrap();
        }
        let (manifest, config) = sigil::attachments::signature_manifest(layers);
        store.put_blob(config).await.unwrap();
        store
            .put_manifest(
                &ManifestRef::Tag(format!("{}.sig", target.tag_stem())),
                sigil::oci::manifest::OCI_MANIFEST,
                manifest,
            )
            .await
            .unwrap();
    });
}

#[test]
fn both_tools_agree_on_rejections() {
    let reg = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_code(&sigil(d, &["generate-key-pair", "--output-key-prefix", "s"]), 0);
    assert_code(&sigil(d, &["generate-key-pair", "--output-key-prefix", "other"]), 0);
    let store = reg.store("reject/app");
    let check_both_reject = |image: &str, why: &str| {
        let c = cosign_verify(d, "s.pub", image);
        assert_ne!(code(&c), 0, "cosign accepted {why}: {}", stdout(&c));
        let s = sigil_verify(d, "s.pub", image);
        assert_code(&s, 12);
        assert!(stdout(&s).is_empty(), "{why}");
    };

    // Wrong key, for signatures made by each tool.
    let a = rt().block_on(push_image(&store, Some("a"), "a", "amd64"));
    let img_a = format!("{}/reject/app@{a}", reg.host());
    assert_code(&sigil(d, &["sign", HTTP, "--key", "other.key", &img_a]), 0);
    check_both_reject(&img_a, "a signature by another key (sigil-made)");
    let b = rt().block_on(push_image(&store, Some("b"), "b", "amd64"));
    let img_b = format!("{}/reject/app@{b}", reg.host());
    assert_code(&cosign_sign(d, "other.key", &img_b, &[]), 0);
    check_both_reject(&img_b, "a signature by another key (cosign-made)");

    // Payload changed: same signature, a payload with an extra annotation.
    let c = rt().block_on(push_image(&store, Some("c"), "c", "amd64"));
    let img_c = format!("{}/reject/app@{c}", reg.host());
    assert_code(&cosign_sign(d, "s.key", &img_c, &[]), 0);
    assert_code(&sigil_verify(d, "s.pub", &img_c), 0);
    tamper(&store, &c, &c, |layers| {
        let payload = sigil::payload::SimpleSigning::new(
            "x".into(),
            c.clone(),
            &[("evil".to_string(), "1".to_string())].into_iter().collect(),
        )
        .to_bytes();
        let mut l = sigil::oci::manifest::Descriptor::of(sigil::attachments::SIMPLE_SIGNING, &payload);
        l.annotations = layers[0].annotations.clone();
        layers[0] = l;
        Some(payload)
    });
    check_both_reject(&img_c, "a changed payload");

    // Signature bytes flipped.
    let e = rt().block_on(push_image(&store, Some("e"), "e", "amd64"));
    let img_e = format!("{}/reject/app@{e}", reg.host());
    assert_code(&sigil(d, &["sign", HTTP, "--key", "s.key", &img_e]), 0);
    tamper(&store, &e, &e, |layers| {
        let ann = layers[0].annotations.as_mut().unwrap();
        let sig = ann.get_mut(sigil::attachments::SIGNATURE_ANNOTATION).unwrap();
        let mut bytes = base64::engine::general_purpose::STANDARD.decode(sig.as_bytes()).unwrap();
        let n = bytes.len();
        bytes[n - 3] ^= 0x01;
        *sig = base64::engine::general_purpose::STANDARD.encode(bytes);
        None
    });
    check_both_reject(&img_e, "flipped signature bytes");

    // A valid signature copied onto another digest.
    let f = rt().block_on(push_image(&store, Some("f"), "f", "amd64"));
    let g = rt().block_on(push_image(&store, Some("g"), "g", "amd64"));
    assert_code(&sigil(d, &["sign", HTTP, "--key", "s.key", &format!("{}/reject/app@{f}", reg.host())]), 0);
    tamper(&store, &f, &g, |_| None);
    check_both_reject(&format!("{}/reject/app@{g}", reg.host()), "a signature copied from another digest");
}

// ---------------------------------------------------------------------------------------
// skopeo (containers/image: what podman and CRI-O verify with), from Debian's next suite.

/// `skopeo copy --all docker://REPO:TAG` under a `sigstoreSigned` policy with the default
/// `matchRepoDigestOrExact` identity rule and sigstore attachments on.
fn skopeo_copy_all(d: &std::path::Path, reg: &Registry, pubkey: &str, image: &str, dest: &str) -> std::process::Output {
    let policy = serde_json::json!({
        "default": [{"type": "reject"}],
        "transports": {"docker": {reg.host(): [{
            "type": "sigstoreSigned",
            "keyPath": d.join(pubkey),
            "signedIdentity": {"type": "matchRepoDigestOrExact"}
        }]}}
    });
    std::fs::write(d.join("policy.json"), serde_json::to_vec(&policy).unwrap()).unwrap();
    std::fs::create_dir_all(d.join("registries.d")).unwrap();
    std::fs::write(
        d.join("registries.d/sigil-test.yaml"),
        format!("docker:\n  {}:\n    use-sigstore-attachments: true\n", reg.host()),
    )
    .unwrap();
    let policy = d.join("policy.json");
    let registries = d.join("registries.d");
    std::process::Command::new(skopeo_bin())
        .current_dir(d)
        .env("HOME", d)
        .args(["--policy", policy.to_str().unwrap(), "--registries.d", registries.to_str().unwrap()])
        // The destination layout cannot hold signatures: they are checked, then not copied.
        .args(["copy", "--all", "--remove-signatures", "--src-tls-verify=false", &format!("docker://{image}"), dest])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run skopeo")
}

/// After `sigil sign --recursive REPO:TAG` on a multi-arch index, skopeo's default policy
/// accepts `copy --all REPO:TAG`: every child's payload names `REPO:TAG`, which
/// matchRepoDigestOrExact requires for a pull by tag. Signing the index alone is refused by
/// skopeo (its children carry no signature): the check is real.
// see: issue 8 §7
#[test]
fn recursive_signature_is_accepted_by_skopeo_copy_all_by_tag() {
    let reg = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert_code(&sigil(d, &["generate-key-pair", "--output-key-prefix", "s"]), 0);
    let (_idx, children) = rt().block_on(push_index(&reg.store("multi/app"), "v1", "sk"));
    let image = format!("{}/multi/app:v1", reg.host());

    // The index alone signed: skopeo refuses the unsigned children.
    assert_code(&sigil(d, &["sign", HTTP, "--key", "s.key", &image]), 0);
    let out = skopeo_copy_all(d, &reg, "s.pub", &image, &format!("oci:{}:v1", d.join("out-refused").display()));
    assert_ne!(code(&out), 0, "skopeo copied an index whose children are unsigned");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("A signature was required, but no signature exists"), "{err}");

    // Recursive: every child names repo:tag, and skopeo accepts the copy.
    assert_code(&sigil(d, &["sign", HTTP, "--recursive", "--key", "s.key", &image]), 0);
    for child in &children {
        let sigs = sigil(d, &["verify", HTTP, "--key", "s.pub", &format!("{}/multi/app@{child}", reg.host())]);
        assert_code(&sigs, 0);
        let payload: Value = serde_json::from_str(stdout(&sigs).lines().next().unwrap()).unwrap();
        let refs: Vec<&str> = payload["signatures"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["critical"]["identity"]["docker-reference"].as_str().unwrap())
            .collect();
        assert_eq!(refs, [format!("{}/multi/app:v1", reg.host())], "child {child}");
    }
    let out = skopeo_copy_all(d, &reg, "s.pub", &image, &format!("oci:{}:v1", d.join("out").display()));
    assert_code(&out, 0);
}
