//! In-process Sigstore bundle verification throughput, and its ratio to the crypto floor.
//!
//! `cargo bench --bench verify_bundle` (on the vendored testdata/vectors). For each bundle: bundles
//! verified per second on one core (the full `verify_bundle`: parse, sigil's checks,
//! certificate chain, SCT, signature, transparency log), and the cost of just the signature
//! verifications that bundle needs, measured in the same run with the same crypto library
//! (aws-lc-rs): a Fulcio bundle with a Rekor v1 entry needs the artifact signature and the
//! SCT, SET and checkpoint signatures (ECDSA P-256) plus the leaf and intermediate
//! certificate signatures (ECDSA P-384).

use std::path::Path;
use std::time::{Duration, Instant};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, KeyPair, UnparsedPublicKey};
use sigil::identity::Matcher;
use sigil::trust::Trust;
use sigil::verify::bundle::{verify_bundle, Artifact, Signer};

const IDENTITY: &str = "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main";
const ISSUER: &str = "https://token.actions.githubusercontent.com";

fn per_second(mut f: impl FnMut(), min: Duration) -> f64 {
    for _ in 0..20 {
        f();
    }
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < min {
        for _ in 0..20 {
            f();
        }
        n += 20;
    }
    n as f64 / start.elapsed().as_secs_f64()
}

/// Seconds per ECDSA verification for `alg` / `sign_alg`.
fn verify_cost(
    sign_alg: &'static signature::EcdsaSigningAlgorithm,
    alg: &'static signature::EcdsaVerificationAlgorithm,
) -> f64 {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(sign_alg, &rng).expect("keygen");
    let kp = EcdsaKeyPair::from_pkcs8(sign_alg, pkcs8.as_ref()).expect("key");
    let msg = vec![7u8; 300];
    let sig = kp.sign(&rng, &msg).expect("sign");
    let pk = UnparsedPublicKey::new(alg, kp.public_key().as_ref().to_vec());
    1.0 / per_second(|| pk.verify(&msg, sig.as_ref()).expect("verify"), Duration::from_millis(700))
}

fn main() {
    let suite = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/vectors/sigstore-conformance/bundle-verify");
    assert!(suite.is_dir(), "the vendored vectors are missing at {}", suite.display());
    let trust = Trust::embedded().expect("embedded root");
    let artifact = std::fs::read(suite.join("a.txt")).expect("a.txt");
    let id = Matcher::Exact(IDENTITY.into());
    let iss = Matcher::Exact(ISSUER.into());
    let signer = Signer::Identity { identity: &id, issuer: &iss };

    let p256 = verify_cost(&signature::ECDSA_P256_SHA256_ASN1_SIGNING, &signature::ECDSA_P256_SHA256_ASN1);
    let p384 = verify_cost(&signature::ECDSA_P384_SHA384_ASN1_SIGNING, &signature::ECDSA_P384_SHA384_ASN1);
    println!("ECDSA verify: P-256 {:.1} µs, P-384 {:.1} µs", p256 * 1e6, p384 * 1e6);
    println!("{:28} {:>12} {:>12} {:>10}", "bundle", "bundles/s", "floor/s", "×floor");
    // (case, P-256 verifications, P-384 verifications)
    for (case, n256, n384) in
        [("happy-path-v0.3", 4, 2), ("happy-path-v0.1", 4, 2), ("happy-path-intoto-in-dsse-v3", 4, 2)]
    {
        let bundle = std::fs::read(suite.join(case).join("bundle.sigstore.json")).expect("bundle");
        verify_bundle(&bundle, Artifact::Bytes(&artifact), &signer, &trust).expect("the bundle verifies");
        let rate = per_second(
            || {
                verify_bundle(&bundle, Artifact::Bytes(&artifact), &signer, &trust).expect("verifies");
            },
            Duration::from_secs(2),
        );
        let floor = 1.0 / (n256 as f64 * p256 + n384 as f64 * p384);
        println!("{case:28} {rate:12.0} {floor:12.0} {:10.2}", floor / rate);
    }
}
