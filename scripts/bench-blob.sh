#!/usr/bin/env bash
# Benchmark: `sigil verify-blob` vs `cosign verify-blob --new-bundle-format` vs the Python
# Sigstore client on the conformance suite's bundles (testdata/vectors), alternating, one
# run. Prints medians and ratios (not a test). Then the in-process throughput bench.
#   bash scripts/bench-blob.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sigil-target}"
bash scripts/setup.sh >/dev/null
# The Python client, in a project-local virtualenv (PyPI).
[ -x .tools/py/bin/sigstore ] || { python3 -m venv .tools/py && .tools/py/bin/pip install -q sigstore; }
cargo build --locked --release -q
python3 scripts/bench_blob.py "$CARGO_TARGET_DIR/release/sigil" .tools/cosign/usr/bin/cosign .tools/py/bin/sigstore "${1:-15}"
cargo bench --locked --bench verify_bundle
