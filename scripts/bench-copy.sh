#!/usr/bin/env bash
# Benchmark: `sigil copy` vs `cosign copy` (2.5) between two throwaway local docker-registry
# instances, measured in one run, the two tools alternating, on two images (1 KiB, and one with a
# 32 MiB layer), each with three attachments both tools copy (cosign 2's `.sig`, `.att` and
# `.sbom` tags). Prints medians and ratios (not a test). Targets (issue 12): wall ≤ 0.5× cosign's,
# peak RSS ≤ 32 MiB.
#   bash scripts/bench-copy.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sigil-target}"
bash scripts/setup.sh >/dev/null
cargo build --locked --release -q
exec python3 scripts/bench_copy.py "$CARGO_TARGET_DIR/release/sigil" "$(pwd)/.tools/cosign/usr/bin/cosign" "${1:-7}"
