#!/usr/bin/env bash
# Runs every test: installs what the tests need (idempotent), then the whole cargo suite, and
# prints how many tests ran (the same count on a fresh clone as in CI: every test's data is in
# the repository, and a test that cannot find its data fails).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/sigil-target}"
bash scripts/setup.sh >/dev/null
cargo fmt --check
python3 scripts/benchlib.py   # the benchmark helpers' examples (request counting)
cargo clippy --locked --all-targets -- -D warnings
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
cargo test --locked --lib --bins --tests 2>&1 | tee "$log" || status=$?
# Sum cargo's per-binary "test result:" lines into one closing line.
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^passed/) p += $i; if ($(i+1) ~ /^failed/) f += $i; if ($(i+1) ~ /^ignored/) s += $i } }
     END { printf "tests: %d passed, %d failed, %d skipped\n", p, f, s }' "$log"
exit "$status"
