#!/usr/bin/env bash
# Benchmark: signing with a transparency log against the local Sigstore stack (Rekor v2,
# Fulcio, the timestamp authority, a CT log, an OIDC issuer; scripts/sigstack/), sigil vs
# cosign 3.1.1 in one run, alternating: keyless `sign` of one image (bundle format, OCI 1.1
# referrer on refreg), keyless `sign-blob`, and key-based `verify` of an image with its
# transparency-log entry checked. Prints medians and ratios (not a test).
#   bash scripts/bench-sigstore.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sigil-target}"
bash scripts/setup.sh >/dev/null
cargo build --locked --release -q
exec python3 scripts/bench_sigstore.py "$CARGO_TARGET_DIR/release/sigil" "$(pwd)/.tools/cosign3/usr/bin/cosign" "${1:-7}"
