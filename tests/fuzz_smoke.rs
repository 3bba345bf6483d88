//! Runs every fuzz entry point over its seed corpus (fuzz/corpus/<target>/) and over
//! deterministic mutations of each seed, so CI exercises the parsers without a fuzzer.
//! The real fuzzing runs with `cargo fuzz run <target>` (see fuzz/README.md).

use std::path::Path;

type Target = fn(&[u8]);

const TARGETS: &[(&str, Target)] = &[
    ("encrypted_key", sigil::fuzzing::encrypted_key),
    ("public_key", sigil::fuzzing::public_key),
    ("payload", sigil::fuzzing::payload),
    ("manifest", sigil::fuzzing::manifest),
    ("reference", sigil::fuzzing::reference),
    ("bundle", sigil::fuzzing::bundle),
    ("checkpoint", sigil::fuzzing::checkpoint),
    ("merkle", sigil::fuzzing::merkle),
    ("attestation", sigil::fuzzing::attestation),
    ("challenge", sigil::fuzzing::challenge),
    ("image_bundle", sigil::fuzzing::image_bundle),
    ("signing_config", sigil::fuzzing::signing_config),
    ("identity_token", sigil::fuzzing::identity_token),
    ("service_answers", sigil::fuzzing::service_answers),
    ("policy", sigil::fuzzing::policy),
    ("workloads", sigil::fuzzing::workloads),
    ("admission_review", sigil::fuzzing::admission_review),
    ("platform", sigil::fuzzing::platform),
];

struct XorShift(u64);
impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

fn mutate(seed: &[u8], rng: &mut XorShift) -> Vec<u8> {
    let mut v = seed.to_vec();
    for _ in 0..1 + rng.below(4) {
        match rng.below(5) {
            0 if !v.is_empty() => {
                let i = rng.below(v.len());
                v[i] ^= 1 << rng.below(8);
            }
            1 if !v.is_empty() => v.truncate(rng.below(v.len())),
            2 => {
                let i = rng.below(v.len() + 1);
                let alphabet = b"{}[]\":,\\-@/=0aZ\xff\x00";
                let b = alphabet[rng.below(alphabet.len())];
                v.insert(i, b);
            }
            3 if v.len() > 1 => {
                let i = rng.below(v.len());
                let j = rng.below(v.len());
                v.swap(i, j);
            }
            _ => {
                let i = rng.below(v.len() + 1);
                let chunk: Vec<u8> = v[..i].to_vec();
                v.extend_from_slice(&chunk);
            }
        }
    }
    v
}

#[test]
fn corpus_and_mutations_do_not_panic() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    let mut rng = XorShift(0x5157_1c0d_e5e1_0001);
    for (name, target) in TARGETS {
        let dir = root.join(name);
        let mut seeds = 0;
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let seed = std::fs::read(entry.unwrap().path()).unwrap();
            target(&seed);
            let rounds = if *name == "bundle" { 40 } else { 300 };
            for _ in 0..rounds {
                target(&mutate(&seed, &mut rng));
            }
            seeds += 1;
        }
        assert!(seeds > 0, "no seeds for {name}");
    }
}

/// The real bundles of the conformance suite (vendored in testdata/vectors) and mutations.
#[test]
fn conformance_bundles_and_mutations_do_not_panic() {
    let suite = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/vectors/sigstore-conformance/bundle-verify");
    let entries = std::fs::read_dir(&suite)
        .unwrap_or_else(|e| panic!("the vendored conformance vectors are missing at {}: {e}", suite.display()));
    let mut rng = XorShift(0x0b0d_1e5e_ed00_0002);
    let mut seeds = 0;
    for e in entries {
        let Ok(seed) = std::fs::read(e.unwrap().path().join("bundle.sigstore.json")) else { continue };
        seeds += 1;
        sigil::fuzzing::bundle(&seed);
        for _ in 0..10 {
            sigil::fuzzing::bundle(&mutate(&seed, &mut rng));
        }
    }
    assert_eq!(seeds, 70, "the conformance suite has 70 bundles")
}

/// The in-toto and DSSE vectors of `testdata/intoto` (read in place) and mutations, through
/// the attestation entry point (envelopes, statements, predicates, summaries, keyless material).
#[test]
fn intoto_vectors_and_mutations_do_not_panic() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/intoto");
    let mut rng = XorShift(0x1a70_70de_55e0_0003);
    let mut seeds = 0;
    for e in std::fs::read_dir(&dir).unwrap() {
        let path = e.unwrap().path();
        if path.extension().is_some_and(|x| x == "json") {
            let seed = std::fs::read(&path).unwrap();
            sigil::fuzzing::attestation(&seed);
            for _ in 0..200 {
                sigil::fuzzing::attestation(&mutate(&seed, &mut rng));
            }
            seeds += 1;
        }
    }
    assert!(seeds >= 8, "only {seeds} vectors in {}", dir.display());
}
