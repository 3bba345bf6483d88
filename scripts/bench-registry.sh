#!/usr/bin/env bash
# Benchmark: sigil vs cosign against a throwaway local docker-registry, measured in one run,
# the two tools alternating on the same images. Prints medians and ratios (not a test).
#   bash scripts/bench-registry.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sigil-target}"
bash scripts/setup.sh >/dev/null
cargo build --locked --release -q
exec python3 scripts/bench_registry.py "$CARGO_TARGET_DIR/release/sigil" "$(pwd)/.tools/cosign/usr/bin/cosign" "${1:-7}"
