//! Shared by `attestation_inputs.rs` and `attestation_interop.rs`: the in-toto vectors of
//! `testdata/intoto`, and hand-made `.att` manifests written through the `Store` API.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use sigil::attachments::{legacy_tag, ATTESTATION_SUFFIX};
use sigil::attachments::{signature_manifest, SIGNATURE_ANNOTATION};
use sigil::digest::Digest;
use sigil::dsse::DSSE_MEDIA_TYPE;
use sigil::oci::manifest::{Descriptor, Limits, Manifest, OCI_MANIFEST};
use sigil::oci::{ManifestRef, RawManifest, Store};

pub const SLSA1_URI: &str = "https://slsa.dev/provenance/v1";

/// `testdata/intoto`.
pub fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/intoto")
}

/// The bytes of one vector file.
pub fn vector(name: &str) -> Vec<u8> {
    let p = vectors_dir().join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
}

/// Absolute path of a vector file, as a string for command lines.
pub fn vector_path(name: &str) -> String {
    vectors_dir().join(name).display().to_string()
}

/// The digest every vector statement is about (`image-digest`).
pub fn vector_image_digest() -> Digest {
    let s = String::from_utf8(vector("image-digest")).expect("utf-8");
    Digest::parse(s.trim()).expect("image-digest is a digest")
}

/// The repository's example key pair (`keys-example/`): a key sigil can sign with in tests.
pub fn example_key() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("keys-example/example.key").display().to_string()
}

pub fn example_pub() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("keys-example/example.pub").display().to_string()
}

pub fn example_password() -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("keys-example/PASSWORD");
    std::fs::read_to_string(p).expect("keys-example/PASSWORD").trim().to_owned()
}

/// Pushes the vector image (`image-*.{bin,json}`) under `tag`; returns its digest, which is
/// the subject of every vector statement.
pub async fn push_vector_image<S: Store>(store: &S, tag: &str) -> Digest {
    store.put_blob(vector("image-layer.bin")).await.expect("push layer");
    store.put_blob(vector("image-config.json")).await.expect("push config");
    let d = store
        .put_manifest(&ManifestRef::Tag(tag.to_owned()), OCI_MANIFEST, vector("image-manifest.json"))
        .await
        .expect("push manifest");
    assert_eq!(d, vector_image_digest(), "image-digest is the digest of image-manifest.json");
    d
}

/// An attestation layer as cosign and sigil write it.
pub fn att_layer(envelope: &[u8], predicate_type: &str) -> Descriptor {
    let mut l = Descriptor::of(DSSE_MEDIA_TYPE, envelope);
    l.annotations = Some(
        [(SIGNATURE_ANNOTATION.to_owned(), String::new()), ("predicateType".to_owned(), predicate_type.to_owned())]
            .into_iter()
            .collect(),
    );
    l
}

/// Appends `envelope` to the `.att` manifest of `image` (the blob is uploaded).
pub async fn attach_envelope<S: Store>(store: &S, image: &Digest, envelope: Vec<u8>, predicate_type: &str) {
    let layer = att_layer(&envelope, predicate_type);
    sigil::sign::attach_layer(store, image, ATTESTATION_SUFFIX, layer, envelope).await.expect("attach envelope");
}

/// The `.att` manifest of `image`, as stored.
pub async fn att_manifest<S: Store>(store: &S, image: &Digest) -> Option<RawManifest> {
    store.get_manifest(&ManifestRef::Tag(legacy_tag(image, ATTESTATION_SUFFIX))).await.expect("get .att manifest")
}

/// The layers of the `.att` manifest of `image` (parsed without the 1000-layer bound, so that
/// tests can look at manifests sigil refuses).
pub async fn att_layers<S: Store>(store: &S, image: &Digest) -> Vec<Descriptor> {
    let Some(raw) = att_manifest(store, image).await else { return Vec::new() };
    match Manifest::parse_with(&raw.bytes, Limits { bytes: 64 << 20, entries: 1_000_000 }).expect("parse") {
        Manifest::Image(m) => m.layers,
        Manifest::Index(_) => panic!(".att is an index"),
    }
}

/// Replaces the `.att` manifest of `image` with one holding `layers` (config uploaded; the
/// layers' blobs must already be there).
pub async fn put_att_manifest<S: Store>(store: &S, image: &Digest, layers: Vec<Descriptor>) -> Digest {
    let (manifest, config) = signature_manifest(layers);
    store.put_blob(config).await.expect("push config");
    store
        .put_manifest(&ManifestRef::Tag(legacy_tag(image, ATTESTATION_SUFFIX)), OCI_MANIFEST, manifest)
        .await
        .expect("push .att manifest")
}

/// Runs sigil as `common::sigil_env` does, under an address-space limit (KiB) and timed.
pub fn sigil_limited(cwd: &Path, args: &[&str], env: &[(&str, &str)], vmem_kib: u64) -> (Output, std::time::Duration) {
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg(format!("ulimit -v {vmem_kib} && exec \"$0\" \"$@\""))
        .arg(env!("CARGO_BIN_EXE_sigil"))
        .args(crate::common::legacy_unless_named(args));
    crate::common::isolate(&mut c, cwd, env);
    let start = std::time::Instant::now();
    let out = c.stdin(Stdio::null()).output().expect("run sigil under ulimit");
    (out, start.elapsed())
}
