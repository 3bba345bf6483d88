#!/usr/bin/env bash
# Benchmark: sigil vs cosign against a throwaway local docker-registry, measured in one run,
# the two tools alternating on the same images. Prints medians and ratios (not a test).
# cosign 2.5 for the legacy format (`.sig`/`.att` tags), cosign 3.1.1 for the bundle format
# (Sigstore bundles as OCI referrers; the tag schema on this registry).
#   bash scripts/bench-registry.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sigil-target}"
bash scripts/setup.sh >/dev/null
cargo build --locked --release -q
exec python3 scripts/bench_registry.py "$CARGO_TARGET_DIR/release/sigil" "$(pwd)/.tools/cosign/usr/bin/cosign" "${1:-7}" \
  "$(pwd)/.tools/cosign3/usr/bin/cosign"
