#!/usr/bin/env bash
# Benchmark: the admission webhook (`sigil webhook`) under load from wrk, against a throwaway
# local docker-registry: warm-cache latency and throughput, cold-cache latency (one image
# verification per review) against `sigil verify` of the same images, and resident memory after
# 100,000 reviews. Prints a table (not a test). wrk and the webhook share this machine's cores.
#   bash scripts/bench-gate.sh
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sigil-target}"
bash scripts/setup.sh >/dev/null
if ! command -v wrk >/dev/null; then
  sudo_if() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
  sudo_if env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
fi
cargo build --locked --release -q
exec python3 scripts/bench_gate.py "$CARGO_TARGET_DIR/release/sigil"
