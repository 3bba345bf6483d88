//! Many `sigil sign` / `sigil attest` processes, each with its own key, on one image at once:
//! every signature must survive, on a registry (no conditional writes) and on an OCI layout
//! (a lock across processes). A signer that exits 0 has its signature there.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Instant;

use base64::Engine as _;
use common::*;
use serde_json::Value;
use sigil::attachments::SIGNATURE_ANNOTATION;
use sigil::attachments::{legacy_tag, ATTESTATION_SUFFIX, SIGNATURE_SUFFIX};
use sigil::digest::Digest;
use sigil::dsse::Envelope;
use sigil::keys::{KeyAlgorithm, Password, PrivateKey, PublicKey, ScryptParams};
use sigil::oci::layout::LayoutStore;
use sigil::oci::manifest::Manifest;
use sigil::oci::{Backend, ManifestRef, Store};

/// Signers per image in the full-size tests.
const SIGNERS: usize = 32;
/// Signers per image in the attest and `--recursive` variants.
const FEW: usize = 8;
/// How often each full-size test is repeated (a fresh image each round).
const ROUNDS: usize = 3;

/// (encrypted private key PEM, public key PEM), made once per test binary: scrypt is the slow
/// part (the cheapest cost cosign reads, N=32768), spread over two threads.
fn key_pems() -> &'static [(String, String)] {
    static KEYS: OnceLock<Vec<(String, String)>> = OnceLock::new();
    KEYS.get_or_init(|| {
        let make = || {
            let key = PrivateKey::generate(KeyAlgorithm::EcdsaP256);
            let pw = Password::new(PASSWORD.as_bytes().to_vec());
            let pem = sigil::keys::encrypt_private_key(&key, &pw, ScryptParams { n: 32768, r: 8, p: 1 }).unwrap();
            (pem, key.public_key().to_pem().unwrap())
        };
        std::thread::scope(|s| {
            let a = s.spawn(|| (0..SIGNERS / 2).map(|_| make()).collect::<Vec<_>>());
            let b = s.spawn(|| (0..SIGNERS - SIGNERS / 2).map(|_| make()).collect::<Vec<_>>());
            let mut all = a.join().unwrap();
            all.extend(b.join().unwrap());
            all
        })
    })
}

/// Writes the first `n` key pairs into `d` as `k<i>.key` / `k<i>.pub`; returns the public keys.
fn write_keys(d: &Path, n: usize) -> Vec<PublicKey> {
    key_pems()[..n]
        .iter()
        .enumerate()
        .map(|(i, (key, public))| {
            std::fs::write(d.join(format!("k{i}.key")), key).unwrap();
            std::fs::write(d.join(format!("k{i}.pub")), public).unwrap();
            PublicKey::from_pem(public.as_bytes()).unwrap()
        })
        .collect()
}

/// Starts `n` sigil processes at once, the i-th with key `k<i>.key` and `args(i)`.
fn spawn_all(d: &Path, n: usize, args: impl Fn(usize) -> Vec<String>) -> Vec<Child> {
    (0..n)
        .map(|i| {
            let mut c = Command::new(sigil_bin());
            let a = args(i);
            c.args(legacy_unless_named(&a.iter().map(String::as_str).collect::<Vec<_>>()));
            isolate(&mut c, d, &[("SIGIL_PASSWORD", PASSWORD)]);
            c.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap()
        })
        .collect()
}

/// Waits for every process: each must exit 0. Returns the rewrites they reported (writes
/// beyond the first, summed over every JSON line).
fn wait_all(children: Vec<Child>) -> u64 {
    let mut rewrites = 0;
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert_code(&out, 0);
        for line in stdout(&out).lines() {
            let v: Value = serde_json::from_str(line).unwrap();
            rewrites += v["writes"].as_u64().unwrap_or(1).saturating_sub(1);
        }
    }
    rewrites
}

/// The layers of the attachment manifest `tag`.
fn layers<S: Store>(store: &S, tag: &str) -> Vec<sigil::oci::manifest::Descriptor> {
    let Some(raw) = rt().block_on(store.get_manifest(&ManifestRef::Tag(tag.to_owned()))).unwrap() else {
        return Vec::new();
    };
    match Manifest::parse(&raw.bytes).unwrap() {
        Manifest::Image(m) => m.layers,
        Manifest::Index(_) => panic!("{tag} is an index"),
    }
}

/// How many of `keys` made a signature over a payload naming `digest` that is in the `.sig`
/// manifest; also checks there is exactly one layer per key.
fn keys_with_signature<S: Store>(store: &S, digest: &Digest, keys: &[PublicKey]) -> usize {
    let layers = layers(store, &legacy_tag(digest, SIGNATURE_SUFFIX));
    let mut found = vec![false; keys.len()];
    for l in &layers {
        let payload = rt().block_on(store.get_blob(&l.digest, 1 << 20)).unwrap();
        let v: Value = serde_json::from_slice(&payload).unwrap();
        assert_eq!(v["critical"]["image"]["docker-manifest-digest"], digest.to_string());
        let sig =
            base64::engine::general_purpose::STANDARD.decode(l.annotation(SIGNATURE_ANNOTATION).unwrap()).unwrap();
        for (i, k) in keys.iter().enumerate() {
            if k.verify(&payload, &sig).is_ok() {
                assert!(!found[i], "key {i} signed twice");
                found[i] = true;
            }
        }
    }
    assert_eq!(layers.len(), found.iter().filter(|f| **f).count(), "a layer no key made");
    layers.len()
}

/// How many of `keys` made an attestation envelope in the `.att` manifest of `digest`.
fn keys_with_attestation<S: Store>(store: &S, digest: &Digest, keys: &[PublicKey]) -> usize {
    let layers = layers(store, &legacy_tag(digest, ATTESTATION_SUFFIX));
    let mut found = vec![false; keys.len()];
    for l in &layers {
        let envelope = Envelope::parse(&rt().block_on(store.get_blob(&l.digest, 1 << 20)).unwrap()).unwrap();
        for (i, k) in keys.iter().enumerate() {
            if envelope.verify(k).is_ok() {
                found[i] = true;
            }
        }
    }
    assert_eq!(layers.len(), keys.len(), "one attestation per key");
    found.iter().filter(|f| **f).count()
}

/// `sign` and `sign --recursive` arguments for one signer.
fn sign_args(i: usize, image: &str, extra: &[&str]) -> Vec<String> {
    let mut a: Vec<String> = ["sign", "--allow-http-registry", "-o", "json", "--key"].map(String::from).to_vec();
    a.push(format!("k{i}.key"));
    a.extend(extra.iter().map(|s| s.to_string()));
    a.push(image.to_owned());
    a
}

/// Signs one image with every key at once, `ROUNDS` times (a fresh image each round), and
/// checks that every signature is there and verifies. `image(round)` pushes the image and
/// returns (its reference for sigil, its digest).
fn signers_round_trip<S: Store>(d: &Path, store: &S, what: &str, image: impl Fn(usize) -> (String, Digest)) {
    let keys = write_keys(d, SIGNERS);
    for round in 0..ROUNDS {
        let (reference, digest) = image(round);
        let started = Instant::now();
        let rewrites = wait_all(spawn_all(d, SIGNERS, |i| sign_args(i, &reference, &[])));
        let took = started.elapsed();
        let verified = keys_with_signature(store, &digest, &keys);
        eprintln!("{what} round {round}: {verified}/{SIGNERS} signatures, {rewrites} rewrites, {took:.1?}");
        assert_eq!(verified, SIGNERS, "{what} round {round}: signatures lost");
        // And the real verifier agrees, for one key per round.
        let k = format!("k{}.pub", round * 7 % SIGNERS);
        assert_code(&sigil(d, &["verify", "--allow-http-registry", "--key", &k, &reference]), 0);
    }
}

// see: issue 8 §1
#[test]
fn concurrent_signers_lose_no_signature_registry() {
    let reg = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let store = reg.store("conc/app");
    signers_round_trip(dir.path(), &store, "registry", |round| {
        let digest = rt().block_on(push_image(&store, Some(&format!("r{round}")), &format!("reg{round}"), "amd64"));
        (format!("{}/conc/app@{digest}", reg.host()), digest)
    });
}

// see: issue 8 §1
#[test]
fn concurrent_signers_lose_no_signature_layout() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let store = LayoutStore::create(&d.join("lay")).unwrap();
    signers_round_trip(d, &store, "layout", |round| {
        let digest = rt().block_on(push_image(&store, Some(&format!("r{round}")), &format!("lay{round}"), "amd64"));
        (format!("oci:lay@{digest}"), digest)
    });
}

// see: issue 8 §1
#[test]
fn concurrent_attesters_lose_no_attestation() {
    let reg = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let keys = write_keys(d, FEW);
    std::fs::write(d.join("vex.json"), r#"{"@context":"https://openvex.dev/ns/v0.2.0","statements":[]}"#).unwrap();
    let registry = reg.store("conc/att");
    let on_registry = rt().block_on(push_image(&registry, Some("v1"), "att", "amd64"));
    let layout = LayoutStore::create(&d.join("lay")).unwrap();
    let on_layout = rt().block_on(push_image(&layout, Some("v1"), "att-lay", "amd64"));
    let attest = |image: String| {
        move |i: usize| {
            let mut a: Vec<String> =
                ["attest", "--allow-http-registry", "--type", "openvex", "--predicate", "vex.json"]
                    .map(String::from)
                    .to_vec();
            a.extend(["--key".to_owned(), format!("k{i}.key"), image.clone()]);
            a
        }
    };
    let started = Instant::now();
    let both = [
        spawn_all(d, FEW, attest(format!("{}/conc/att@{on_registry}", reg.host()))),
        spawn_all(d, FEW, attest(format!("oci:lay@{on_layout}"))),
    ];
    let rewrites: u64 = both.into_iter().map(wait_all).sum();
    let took = started.elapsed();
    let on_reg = keys_with_attestation(&registry, &on_registry, &keys);
    let on_lay = keys_with_attestation(&layout, &on_layout, &keys);
    eprintln!("attest: registry {on_reg}/{FEW}, layout {on_lay}/{FEW}, {rewrites} rewrites, {took:.1?}");
    assert_eq!((on_reg, on_lay), (FEW, FEW), "attestations lost");
}

// see: issue 8 §1
#[test]
fn concurrent_recursive_signers_lose_no_signature() {
    let reg = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let keys = write_keys(d, FEW);
    let registry = reg.store("conc/multi");
    let (reg_index, reg_children) = rt().block_on(push_index(&registry, "v1", "multi"));
    let layout = LayoutStore::create(&d.join("lay")).unwrap();
    let (lay_index, lay_children) = rt().block_on(push_index(&layout, "v1", "multi-lay"));
    let started = Instant::now();
    let reg_image = format!("{}/conc/multi@{reg_index}", reg.host());
    let lay_image = format!("oci:lay@{lay_index}");
    let both = [
        spawn_all(d, FEW, |i| sign_args(i, &reg_image, &["--recursive"])),
        spawn_all(d, FEW, |i| sign_args(i, &lay_image, &["--recursive"])),
    ];
    let rewrites: u64 = both.into_iter().map(wait_all).sum();
    let took = started.elapsed();
    for (store, index, children) in
        [(&registry as &dyn Check, &reg_index, &reg_children), (&layout, &lay_index, &lay_children)]
    {
        for digest in std::iter::once(index).chain(children) {
            assert_eq!(store.signed_by(digest, &keys), FEW, "{digest}: signatures lost");
        }
    }
    eprintln!("sign --recursive: 2 x 3 manifests x {FEW}/{FEW}, {rewrites} rewrites, {took:.1?}");
}

/// `keys_with_signature` over either kind of store, so both can be walked in one loop.
trait Check {
    fn signed_by(&self, digest: &Digest, keys: &[PublicKey]) -> usize;
}

impl<S: Store> Check for S {
    fn signed_by(&self, digest: &Digest, keys: &[PublicKey]) -> usize {
        keys_with_signature(self, digest, keys)
    }
}

/// A proxy in front of the real registry that, once a `.sig` manifest has been written,
/// answers every read of it with HTTP 500: the signer cannot confirm its signature.
fn failing_read_back_proxy(registry: u16) -> u16 {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::sync::atomic::{AtomicBool, Ordering};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let written = std::sync::Arc::new(AtomicBool::new(false));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut client) = stream else { break };
            let written = written.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(client.try_clone().unwrap());
                let mut request_line = String::new();
                if reader.read_line(&mut request_line).is_err() {
                    return;
                }
                let (mut headers, mut length) = (String::new(), 0usize);
                loop {
                    let mut h = String::new();
                    if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
                        break;
                    }
                    let lower = h.to_ascii_lowercase();
                    if let Some(v) = lower.strip_prefix("content-length:") {
                        length = v.trim().parse().unwrap_or(0);
                    }
                    if !lower.starts_with("connection:") {
                        headers.push_str(&h);
                    }
                }
                let mut body = vec![0u8; length];
                if reader.read_exact(&mut body).is_err() {
                    return;
                }
                let sig_manifest = request_line.contains("/manifests/sha256-") && request_line.contains(".sig");
                if sig_manifest && request_line.starts_with("GET") && written.load(Ordering::SeqCst) {
                    let _ = client.write_all(
                        b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    );
                    return;
                }
                if sig_manifest && request_line.starts_with("PUT") {
                    written.store(true, Ordering::SeqCst);
                }
                let Ok(mut upstream) = std::net::TcpStream::connect(("127.0.0.1", registry)) else { return };
                let _ = upstream.write_all(format!("{request_line}{headers}Connection: close\r\n\r\n").as_bytes());
                let _ = upstream.write_all(&body);
                let mut response = Vec::new();
                let _ = upstream.read_to_end(&mut response);
                let _ = client.write_all(&response);
            });
        }
    });
    port
}

/// A signer that cannot read its signature back exits 1 and says that the signature may not
/// be attached, instead of reporting success.
// see: issue 8 §1
#[test]
fn unconfirmed_signature_is_reported_not_claimed() {
    let reg = Registry::start();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_keys(d, 1);
    let digest = rt().block_on(push_image(&reg.store("conc/lossy"), Some("v1"), "lossy", "amd64"));
    let proxy = failing_read_back_proxy(reg.port);
    let args = sign_args(0, &format!("127.0.0.1:{proxy}/conc/lossy@{digest}"), &[]);
    let out = sigil(d, &args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_code(&out, 1);
    assert!(stdout(&out).is_empty(), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(err.contains("the signature may not be attached: could not confirm"), "{err}");
    assert!(err.contains("run the same command again"), "{err}");
}

/// How many of `keys` made a bundle signature (cosign 3's format) about `digest` that is
/// discoverable as a referrer; checks each key signed once and each bundle verifies with the
/// pure checker.
fn keys_with_bundle<S: Store>(store: &S, digest: &Digest, keys: &[PublicKey]) -> usize {
    use sigil::attachments::{bundle_entries, bundle_layer, Kind, Referrer};
    use sigil::verify::image_bundle::{check_image_bundle, Expect};
    let (entries, unread) = rt().block_on(bundle_entries(store, digest, Kind::Signature)).unwrap();
    assert_eq!(unread, 0);
    let none = Default::default();
    let mut found = vec![false; keys.len()];
    for e in &entries {
        let Referrer::Bundle(b) = rt().block_on(bundle_layer(store, e, digest)).unwrap().unwrap() else {
            panic!("{} is not a bundle", e.digest)
        };
        let bytes = rt().block_on(store.get_blob(&b.layer.digest, 1 << 20)).unwrap();
        let signed: Vec<usize> = (0..keys.len())
            .filter(|&i| {
                let signer = sigil::verify::ImageSigner::Key(&keys[i]);
                check_image_bundle(&bytes, digest, &signer, &Expect::Signature { annotations: &none }).is_ok()
            })
            .collect();
        assert_eq!(signed.len(), 1, "bundle {} verifies with exactly one key", e.digest);
        assert!(!found[signed[0]], "key {} listed twice", signed[0]);
        found[signed[0]] = true;
    }
    found.iter().filter(|f| **f).count()
}

/// Bundle signatures are one referrer each: on a registry with the referrers API there is no
/// shared document to lose, and each signer reads the API back until its referrer is listed;
/// without it (and on a layout) the tag-schema index is reconciled like the `.sig` manifest.
// see: issue 9
#[test]
fn concurrent_bundle_signers_lose_no_signature() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let keys = write_keys(d, SIGNERS);
    let mut cases: Vec<(String, Backend, String, Digest)> = Vec::new();
    let regs: Vec<Registry> = RegistryKind::ALL.iter().map(|k| Registry::start_kind(*k)).collect();
    for (reg, kind) in regs.iter().zip(RegistryKind::ALL) {
        let store = reg.store("conc/bundle");
        let digest = rt().block_on(push_image(&store, Some("v1"), &format!("{kind:?}"), "amd64"));
        cases.push((format!("{kind:?}"), store, format!("{}/conc/bundle@{digest}", reg.host()), digest));
    }
    let layout = Backend::Layout(LayoutStore::create(&d.join("blay")).unwrap());
    let digest = rt().block_on(push_image(&layout, Some("v1"), "bundle-layout", "amd64"));
    cases.push(("layout".into(), layout, format!("oci:blay@{digest}"), digest));
    for (what, store, reference, digest) in &cases {
        let started = Instant::now();
        wait_all(spawn_all(d, SIGNERS, |i| sign_args(i, reference, &["--format", "bundle"])));
        let took = started.elapsed();
        let verified = keys_with_bundle(store, digest, &keys);
        eprintln!("{what}: {verified}/{SIGNERS} bundle signatures, {took:.1?}");
        assert_eq!(verified, SIGNERS, "{what}: bundle signatures lost");
        let out = sigil(d, &["verify", "--allow-http-registry", "--format", "bundle", "--key", "k3.pub", reference]);
        assert_code(&out, 0);
    }
}
